/* schedule.c — learning-rate schedules: step decay and cosine annealing. */
#include "../core/internal.h"
#include <math.h>

/* base * gamma^floor(step / every) (PyTorch's StepLR). */
float nb_lr_step(float base, int64_t step, int64_t every, float gamma) {
    if (every <= 0) nb_fatal("lr_step", "every must be > 0, got %lld", (long long)every);
    if (step < 0) step = 0;
    return (float)((double)base * pow((double)gamma, (double)(step / every)));
}

/* min + (base - min) (1 + cos(pi step / total)) / 2 for 0 <= step < total,
 * and min from step total on (CosineAnnealingLR without restarts). */
float nb_lr_cosine(float base, int64_t step, int64_t total, float min_lr) {
    const double pi = 3.14159265358979323846;
    if (step >= total) return min_lr;
    if (step <= 0) return base;
    double c = (1.0 + cos(pi * (double)step / (double)total)) / 2.0;
    return (float)((double)min_lr + ((double)base - (double)min_lr) * c);
}
