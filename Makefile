# nabla — build, test, install. `make` builds the library and the command;
# `make test` runs the unit tests; `make asan` builds and runs them again under
# AddressSanitizer + UndefinedBehaviorSanitizer; `make tsan` runs the tests of
# several user threads under ThreadSanitizer; `make fuzz` runs the fuzzers.
# `make` alone builds `all` (the rules of the CUDA section come first).
.DEFAULT_GOAL := all
PREFIX   ?= /usr/local
BUILD    ?= build
CC       ?= cc
DEPS     := openblas lapacke libcjson zlib libpng cairo pixman-1 libjpeg sndfile samplerate fftw3f
ARCH     ?= -march=native
OPT      ?= -O3 $(ARCH)
SAN      ?=
CFLAGS   ?= $(OPT) -g
CFLAGS   += $(SAN)
CFLAGS   += -std=c11 -D_GNU_SOURCE -fno-math-errno -ffp-contract=fast -fopenmp -fPIC -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wshadow \
            -Iinclude $(shell pkg-config --cflags $(DEPS))
LDLIBS   += $(shell pkg-config --libs $(DEPS)) -fopenmp -lm $(SAN)

# MPI (data-parallel training, cli/dist.c): MPI=auto builds the command with
# it when mpicc is found, MPI=1 requires it, MPI=0 leaves it out. Only
# cli/dist.o and the command's link see it; libnabla does not depend on MPI.
MPI      ?= auto
ifeq ($(MPI),auto)
MPI_ON   := $(if $(shell command -v mpicc 2>/dev/null),1,0)
else
MPI_ON   := $(MPI)
endif
ifeq ($(MPI_ON),1)
MPI_CFLAGS := -DNB_MPI $(shell mpicc --showme:compile 2>/dev/null || mpicc -compile_info 2>/dev/null | cut -d' ' -f2-)
MPI_LIBS   := $(shell mpicc --showme:link 2>/dev/null || mpicc -link_info 2>/dev/null | cut -d' ' -f2-)
endif

# The CUDA backend (src/cuda): CUDA=1 compiles its .cu files with nvcc and
# links the CUDA runtime and cuBLAS; CUDA=emu compiles the same files with the
# host C++ compiler against src/cuda/emu.cc, an emulator that runs kernels on
# the CPU, so that their logic is tested on machines without a GPU (`make
# cuda-emu`); CUDA=0, the default, links src/cuda/absent.c instead and needs
# nothing of CUDA. CUDA_ARCH: the GPUs to compile for (Ampere and Hopper, plus
# PTX that newer ones compile at load time).
CUDA      ?= 0
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
CXX       ?= g++
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=[sm_90,compute_90]
CU_SRC    := $(sort $(wildcard src/cuda/*.cu))

LIB_SRC  := $(sort $(wildcard src/*/*.c))
ifneq ($(CUDA),0)
LIB_SRC  := $(filter-out src/cuda/absent.c,$(LIB_SRC))
CFLAGS   += -DNB_HAVE_CUDA
endif
ifeq ($(CUDA),1)
CU_OBJ   := $(CU_SRC:%.cu=$(BUILD)/%.o)
LDLIBS   += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++
else ifeq ($(CUDA),emu)
CU_OBJ   := $(CU_SRC:%.cu=$(BUILD)/%.o) $(BUILD)/src/cuda/emu.o
CFLAGS   += -DNB_CUDA_EMU
LDLIBS   += -lstdc++
endif
CU_HDR   := include/nabla.h $(wildcard src/cuda/*.h)
CXXFLAGS_EMU = -std=c++17 -O2 -g -fPIC -Wall -Wextra -Wno-unused-parameter -DNB_HAVE_CUDA -DNB_CUDA_EMU $(SAN) \
               -Iinclude -Isrc/cuda $(shell pkg-config --cflags openblas)
ifeq ($(CUDA),1)
$(BUILD)/src/cuda/%.o: src/cuda/%.cu $(CU_HDR)
	@mkdir -p $(dir $@)
	$(NVCC) -std=c++17 -O3 $(CUDA_ARCH) -DNB_HAVE_CUDA -Xcompiler -fPIC,-Wall,-Wextra,-Wno-unused-parameter -Iinclude -Isrc/cuda -c $< -o $@
else
$(BUILD)/src/cuda/%.o: src/cuda/%.cu $(CU_HDR)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_EMU) -x c++ -c $< -o $@
endif
$(BUILD)/src/cuda/emu.o: src/cuda/emu.cc $(CU_HDR)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_EMU) -c $< -o $@
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c)) tests/harness.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(CU_OBJ)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all lib examples test asan asan-cli tsan cuda-emu fuzz bench parity install uninstall clean
all: lib $(BUILD)/nabla examples
lib: $(BUILD)/libnabla.a $(BUILD)/libnabla.so $(BUILD)/nabla.pc

$(BUILD)/%.o: %.c include/nabla.h $(wildcard src/*/*.h) $(wildcard cli/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libnabla.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libnabla.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libnabla.so.$(SOVERSION) -o $@ $^ $(LDLIBS)

# $(call record,FILE,VALUE) writes VALUE to $(BUILD)/FILE when make reads this
# file, only if it differs from what is there: what depends on FILE is rebuilt
# when the setting changes, and only then (a rule forced to run every time would
# make every `make` rebuild it and relink everything after).
record = $(shell mkdir -p $(BUILD) && { printf '%s\n' '$(2)' | cmp -s - $(BUILD)/$(1) || printf '%s\n' '$(2)' > $(BUILD)/$(1); })

# Records the CUDA mode, so that changing it rebuilds what depends on it.
$(call record,cuda,$(CUDA))
$(BUILD)/src/core/device.o: $(BUILD)/cuda

$(BUILD)/cli/dist.o: CFLAGS += $(MPI_CFLAGS)
$(BUILD)/cli/dist.o: $(BUILD)/mpi
$(BUILD)/nabla: $(CLI_OBJ) $(BUILD)/libnabla.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libnabla.a $(LDLIBS) $(MPI_LIBS)
# Records whether MPI is built in, so that changing MPI rebuilds cli/dist.o.
$(call record,mpi,$(MPI_ON))

# Short programs that use the library as a user would (examples/*.c).
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
examples: $(EXAMPLES)
$(BUILD)/examples/%: examples/%.c $(BUILD)/libnabla.a include/nabla.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libnabla.a $(LDLIBS)

$(BUILD)/nabla-tests: $(TEST_OBJ) $(BUILD)/libnabla.a
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/libnabla.a $(LDLIBS)

# The pkg-config file names the PREFIX it is installed under: $(BUILD)/prefix
# records PREFIX and is rewritten only when PREFIX changes, so `make` then `make
# install PREFIX=DIR` regenerates nabla.pc for DIR. Outside /usr, whose lib is on
# the loader's default path, Libs carries an rpath: a program built with
# `pkg-config --libs nabla` then finds libnabla.so.0 without LD_LIBRARY_PATH or
# ldconfig. Libs.private and Requires.private are what libnabla.a needs.
VERSION   := 0.1.0
SOVERSION := 0
ifeq ($(patsubst %/,%,$(PREFIX)),/usr)
PC_RPATH  :=
else
PC_RPATH   = -Wl,-rpath,$${libdir}
endif
$(call record,prefix,$(PREFIX))
$(BUILD)/nabla.pc: Makefile $(BUILD)/prefix
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: nabla\nDescription: float32 tensors, autodiff and deep learning in C\nVersion: %s\nRequires.private: %s\nCflags: -I$${includedir}\nLibs: %s\nLibs.private: -fopenmp -lm\n' \
	  '$(PREFIX)' '$(VERSION)' '$(DEPS)' '$(strip -L$${libdir} $(PC_RPATH) -lnabla)' > $@

# The unit tests (one binary; `build/nabla-tests NAME...` runs the tests whose
# names contain NAME) and the command-line tests (tests/cli.sh [NAME...]);
# the README and speech-corpus tests run the example programs too.
test: $(BUILD)/nabla-tests $(BUILD)/nabla examples
	tests/run.sh

# Same tests under the sanitizers, in their own build folder.
ASAN_FLAGS := -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
asan:
	$(MAKE) BUILD=build-asan OPT="-O1" SAN="$(ASAN_FLAGS)" build-asan/nabla-tests
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp UBSAN_OPTIONS=print_stacktrace=1 \
	  NABLA_THREADS=2 build-asan/nabla-tests

# The command's tests (tests/cli.sh) against a nabla built the same way: the
# parsers, trainers and writers of cli/ as a user drives them. NABLA_SANITIZED
# skips the tests that set an address-space limit (ASan reserves terabytes of
# shadow memory, so no ulimit -v leaves it room).
asan-cli:
	$(MAKE) BUILD=build-asan OPT="-O1" SAN="$(ASAN_FLAGS)" build-asan/nabla examples
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp UBSAN_OPTIONS=print_stacktrace=1 \
	  NABLA_SANITIZED=1 NABLA=$(CURDIR)/build-asan/nabla tests/cli.sh

# The tests of the library used from several threads (tests/test_threads.c)
# under ThreadSanitizer, in their own build folder. NABLA_THREADS=1: libgomp
# is not built with TSan, which then takes the hand-offs of its own thread
# pool for races; with one thread the kernels never fork and every report is
# about the user threads. Not part of `make test`: it is slow and needs TSan.
TSAN_FLAGS := -fno-omit-frame-pointer -fsanitize=thread
TSAN_TESTS ?= test_threads
tsan:
	$(MAKE) BUILD=build-tsan OPT="-O1" SAN="$(TSAN_FLAGS)" build-tsan/nabla-tests
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" NABLA_THREADS=1 build-tsan/nabla-tests $(TSAN_TESTS)

# The CUDA backend's kernels run by the emulator and compared with the CPU ops
# (the tests named cuda_*), in their own build folder: what can be checked of
# the GPU code on a machine without a GPU. The tests run twice, the second
# time with blocks and threads in reverse order, where a race gives another
# result (src/cuda/emu.cc).
cuda-emu:
	$(MAKE) BUILD=build-cuda-emu CUDA=emu build-cuda-emu/nabla-tests build-cuda-emu/nabla build-cuda-emu/cuda_emu_selftest
	build-cuda-emu/cuda_emu_selftest
	NABLA_THREADS=2 build-cuda-emu/nabla-tests cuda_
	NB_EMU_ORDER=reverse NABLA_THREADS=2 build-cuda-emu/nabla-tests cuda_
	NABLA=$(CURDIR)/build-cuda-emu/nabla tests/cli.sh cli_train_device cli_charrnn_device cli_wavenet_device cli_chat_device cli_style_device
# The emulator's own test: barriers, shared memory, launch errors, page
# protection of device memory, cuBLAS's column-major semantics.
$(BUILD)/cuda_emu_selftest: tests/cuda_emu_selftest.cu src/cuda/emu.cc src/cuda/emu.h
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O2 -DNB_CUDA_EMU -Iinclude -Isrc/cuda -x c++ tests/cuda_emu_selftest.cu -x none src/cuda/emu.cc \
	  $(shell pkg-config --cflags --libs openblas) -o $@

# Fuzz the readers of outside data (clang + libFuzzer). The library is built
# once, instrumented, into FUZZ_DIR and every target tests/fuzz/fuzz_NAME.c
# links against it. `make fuzz` runs each of FUZZ_TARGETS (default: all) for
# FUZZ_SECONDS (FUZZ_FLAGS are passed on) on a corpus in FUZZ_DIR/corpus-NAME
# grown from its seeds (tests/fuzz/seeds/NAME: small valid files), the saved
# corpus (tests/fuzz/corpus/NAME) and kept crash inputs (tests/fuzz/regress/NAME).
# A crash input is written to FUZZ_DIR/crash-NAME-*: copy it to
# tests/fuzz/regress/NAME/. `make fuzz-merge` adds what a run found to the
# saved corpus, minimized. `make fuzz-regress` runs each target once over the
# three folders only, for the test suite.
FUZZ_SECONDS ?= 60
FUZZ_DIR     ?= build-fuzz
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_FLAGS   ?=
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 -fopenmp -Iinclude $(shell pkg-config --cflags $(DEPS))
FUZZ_LIBOBJ  := $(LIB_SRC:%.c=$(FUZZ_DIR)/lib/%.o)
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
.PHONY: fuzz-build fuzz-regress fuzz-merge

$(FUZZ_DIR)/lib/%.o: %.c include/nabla.h $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@
$(FUZZ_DIR)/libnabla.a: $(FUZZ_LIBOBJ)
	rm -f $@ && ar rcs $@ $^
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libnabla.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) $< $(FUZZ_DIR)/libnabla.a -o $@ \
	  $(shell pkg-config --libs $(DEPS)) -lm
fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus-$$t && \
	  cp -n tests/fuzz/seeds/$$t/* $(FUZZ_DIR)/corpus-$$t/ 2>/dev/null; \
	  cp -n tests/fuzz/corpus/$$t/* tests/fuzz/regress/$$t/* $(FUZZ_DIR)/corpus-$$t/ 2>/dev/null; \
	  $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_DIR)/crash-$$t- $(FUZZ_FLAGS) \
	    $(FUZZ_DIR)/corpus-$$t || exit 1; \
	done

# -runs=0 executes every file of the folders once and stops; any crash, leak
# or undefined behaviour fails it.
fuzz-regress: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do \
	  dirs=$$(ls -d tests/fuzz/seeds/$$t tests/fuzz/corpus/$$t tests/fuzz/regress/$$t 2>/dev/null); \
	  n=$$(find $$dirs -type f | wc -l); \
	  $(FUZZ_DIR)/fuzz_$$t -runs=0 $$dirs >$(FUZZ_DIR)/regress-$$t.log 2>&1 \
	    || { cat $(FUZZ_DIR)/regress-$$t.log; echo "fuzz-regress: $$t FAILED"; exit 1; }; \
	  echo "fuzz-regress: $$t: $$n inputs ok"; \
	done

fuzz-merge: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p tests/fuzz/corpus/$$t && \
	  $(FUZZ_DIR)/fuzz_$$t -merge=1 tests/fuzz/corpus/$$t $(FUZZ_DIR)/corpus-$$t >$(FUZZ_DIR)/merge-$$t.log 2>&1 \
	    || { tail -20 $(FUZZ_DIR)/merge-$$t.log; exit 1; }; \
	  echo "fuzz-merge: $$t: $$(ls tests/fuzz/corpus/$$t | wc -l) inputs"; \
	done

bench: all
	$(MAKE) -C bench

# every op against float64 PyTorch, values, gradients and H v (needs python3-torch)
parity:
	BUILD=$(BUILD) bench/parity.sh

install: lib $(BUILD)/nabla
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/nabla.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libnabla.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libnabla.so $(DESTDIR)$(PREFIX)/lib/libnabla.so.$(VERSION)
	ln -sf libnabla.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libnabla.so.$(SOVERSION)
	ln -sf libnabla.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libnabla.so
	install -m 644 $(BUILD)/nabla.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 755 $(BUILD)/nabla $(DESTDIR)$(PREFIX)/bin/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/nabla.h $(DESTDIR)$(PREFIX)/lib/libnabla.a \
	  $(DESTDIR)$(PREFIX)/lib/libnabla.so $(DESTDIR)$(PREFIX)/lib/libnabla.so.$(SOVERSION) \
	  $(DESTDIR)$(PREFIX)/lib/libnabla.so.$(VERSION) \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/nabla.pc $(DESTDIR)$(PREFIX)/bin/nabla

clean:
	rm -rf build build-asan build-tsan build-fuzz
