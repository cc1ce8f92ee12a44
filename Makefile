# nabla — build, test, install. `make` builds the library and the command;
# `make test` runs the unit tests; `make asan` builds and runs them again under
# AddressSanitizer + UndefinedBehaviorSanitizer; `make fuzz` runs the fuzzers.
PREFIX   ?= /usr/local
BUILD    ?= build
CC       ?= cc
DEPS     := openblas lapacke libcjson zlib libpng
ARCH     ?= -march=native
OPT      ?= -O3 $(ARCH)
SAN      ?=
CFLAGS   ?= $(OPT) -g
CFLAGS   += $(SAN)
CFLAGS   += -std=c11 -D_GNU_SOURCE -fno-math-errno -ffp-contract=fast -fopenmp -fPIC -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wshadow \
            -Iinclude $(shell pkg-config --cflags $(DEPS))
LDLIBS   += $(shell pkg-config --libs $(DEPS)) -fopenmp -lm $(SAN)

LIB_SRC  := $(sort $(wildcard src/*/*.c))
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c)) tests/harness.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all lib examples test asan fuzz bench install uninstall clean
all: lib $(BUILD)/nabla examples
lib: $(BUILD)/libnabla.a $(BUILD)/libnabla.so $(BUILD)/nabla.pc

$(BUILD)/%.o: %.c include/nabla.h $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libnabla.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libnabla.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libnabla.so.0 -o $@ $^ $(LDLIBS)

$(BUILD)/nabla: $(CLI_OBJ) $(BUILD)/libnabla.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libnabla.a $(LDLIBS)

# Short programs that use the library as a user would (examples/*.c).
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
examples: $(EXAMPLES)
$(BUILD)/examples/%: examples/%.c $(BUILD)/libnabla.a include/nabla.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libnabla.a $(LDLIBS)

$(BUILD)/nabla-tests: $(TEST_OBJ) $(BUILD)/libnabla.a
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/libnabla.a $(LDLIBS)

$(BUILD)/nabla.pc: Makefile
	@mkdir -p $(BUILD)
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: nabla\nDescription: float32 tensors, autodiff and deep learning in C\nVersion: 0.1.0\nRequires.private: %s\nCflags: -I$${includedir}\nLibs: -L$${libdir} -lnabla\nLibs.private: -fopenmp -lm\n' \
	  '$(PREFIX)' '$(DEPS)' > $@

# The unit tests (one binary; `build/nabla-tests NAME...` runs the tests whose
# names contain NAME) and the command-line tests (tests/cli.sh [NAME...]).
test: $(BUILD)/nabla-tests $(BUILD)/nabla
	tests/run.sh

# Same tests under the sanitizers, in their own build folder.
ASAN_FLAGS := -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
asan:
	$(MAKE) BUILD=build-asan OPT="-O1" SAN="$(ASAN_FLAGS)" build-asan/nabla-tests
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 NABLA_THREADS=2 build-asan/nabla-tests

# Fuzz the parsers of outside data (clang + libFuzzer), FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus-$$t && \
	  clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
	    $(shell pkg-config --cflags $(DEPS)) tests/fuzz/fuzz_$$t.c $(LIB_SRC) -o build-fuzz/fuzz_$$t \
	    $(shell pkg-config --libs $(DEPS)) -fopenmp -lm && \
	  cp -n tests/fuzz/seeds/$$t/* build-fuzz/corpus-$$t/ 2>/dev/null; \
	  build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus-$$t || exit 1; \
	done

bench: all
	$(MAKE) -C bench

install: lib $(BUILD)/nabla
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/nabla.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libnabla.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libnabla.so $(DESTDIR)$(PREFIX)/lib/libnabla.so.0
	ln -sf libnabla.so.0 $(DESTDIR)$(PREFIX)/lib/libnabla.so
	install -m 644 $(BUILD)/nabla.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 755 $(BUILD)/nabla $(DESTDIR)$(PREFIX)/bin/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/nabla.h $(DESTDIR)$(PREFIX)/lib/libnabla.* \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/nabla.pc $(DESTDIR)$(PREFIX)/bin/nabla

clean:
	rm -rf build build-asan build-fuzz
