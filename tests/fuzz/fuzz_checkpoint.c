/* fuzz_checkpoint.c — libFuzzer target: the loaders of the model files that
 * fuzz_model does not read: the chat dual encoder (sizes and vocabulary in
 * __metadata__), WaveNet (settings in __metadata__) and a DQN learner's
 * checkpoint (target network, Adam's moments, replay memory, random streams,
 * episode in progress). Each must return a model or an error that names the
 * file; never crash, leak or hit UB, and never allocate what the file does
 * not hold. */
#include "model_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_as_file(data, size);
    FUZZ_LOAD_WITH_ST(nb_dualenc, nb_dualenc_load, nb_dualenc_free, path);
    FUZZ_LOAD_WITH_ST(nb_wavenet, nb_wavenet_load, nb_wavenet_free, path);
    FUZZ_LOAD_WITH_ST(nb_dqn, nb_dqn_resume, nb_dqn_free, path);
    return 0;
}
