/* absent.c — what a build without the CUDA backend (CUDA=0, the default)
 * links in place of the .cu files of src/cuda. No tensor can reach the GPU in such a
 * build (nb_device_ready(NB_CUDA) fails, and nb_to and nb_tensor_move check
 * it), so none of these runs; they exist so that the ops' GPU paths link.
 * nb__gpu_init answers honestly; the rest fail loudly if ever reached. */
#include "../core/internal.h"

static NB_NORETURN void absent(const char *what) {
    nb_fatal("cuda", "%s called in a build without CUDA (a bug: no tensor can be on the GPU here)", what);
}

int nb__gpu_init(char *why, size_t n) {
    snprintf(why, n, "this nabla was built without CUDA");
    return -1;
}
const char *nb__gpu_name(void) { return ""; }
void *nb__gpu_alloc(size_t bytes) { absent("nb__gpu_alloc"); }
void nb__gpu_free(void *p) { absent("nb__gpu_free"); }
void nb__gpu_to_device(void *dst, const void *src_host, size_t bytes) { absent("nb__gpu_to_device"); }
void nb__gpu_to_host(void *dst_host, const void *src, size_t bytes) { absent("nb__gpu_to_host"); }
void nb__gpu_copy(void *dst, const void *src, size_t bytes) { absent("nb__gpu_copy"); }
void nb__gpu_fill(float *x, int64_t n, float v) { absent("nb__gpu_fill"); }
void nb__gpu_binary(nb_gpu_binop op, float *o, const float *a, const float *b, int nd, const int64_t *d,
                    const int64_t *sa, const int64_t *sb) {
    absent("nb__gpu_binary");
}
void nb__gpu_unary(nb_gpu_unop op, float *o, const float *x, int64_t n, float p) { absent("nb__gpu_unary"); }
void nb__gpu_rect_grad(float *o, const float *g, const float *x, int64_t n, float a) { absent("nb__gpu_rect_grad"); }
void nb__gpu_sq_grad(float *o, const float *g, const float *y, int64_t n, bool tanh) { absent("nb__gpu_sq_grad"); }
void nb__gpu_accum(float *y, const float *x, int64_t n) { absent("nb__gpu_accum"); }
void nb__gpu_gated(float *o, const float *x, int64_t N, int64_t M) { absent("nb__gpu_gated"); }
void nb__gpu_gated_grad(float *o, const float *x, const float *g, int64_t N, int64_t M) {
    absent("nb__gpu_gated_grad");
}
void nb__gpu_strided_copy(float *o, const float *x, int nd, const int64_t *d, const int64_t *s) {
    absent("nb__gpu_strided_copy");
}
void nb__gpu_copy_rows(float *o, int64_t o_stride, const float *x, int64_t x_stride, int64_t rows, int64_t cols) {
    absent("nb__gpu_copy_rows");
}
void nb__gpu_gather_rows(float *o, const float *x, const int32_t *idx, int64_t rows, int64_t cols) {
    absent("nb__gpu_gather_rows");
}
void nb__gpu_sum_mid(float *o, const float *x, int64_t outer, int64_t mid, int64_t inner) { absent("nb__gpu_sum_mid"); }
void nb__gpu_sumsq(float *out, const float *x, int64_t n) { absent("nb__gpu_sumsq"); }
void nb__gpu_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                  int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                  int64_t stride_c, int64_t batch) {
    absent("nb__gpu_gemm");
}
void nb__gpu_softmax(float *o, const float *x, int64_t outer, int64_t C, int64_t inner, bool log) { absent("nb__gpu_softmax"); }
void nb__gpu_softmax_grad(float *o, const float *y, const float *g, int64_t rows, int64_t cols, bool log) {
    absent("nb__gpu_softmax_grad");
}
void nb__gpu_cross_entropy(float *loss, float *m, float *l, const float *x, const int32_t *y, int64_t rows,
                           int64_t cols) {
    absent("nb__gpu_cross_entropy");
}
void nb__gpu_cross_entropy_grad(float *d, const float *x, const float *m, const float *l, const int32_t *y,
                                const float *g, int64_t rows, int64_t cols) {
    absent("nb__gpu_cross_entropy_grad");
}
void nb__gpu_sgd(float *w, const float *g, float *v, int64_t n, float lr, float wd, float mu, bool nesterov) {
    absent("nb__gpu_sgd");
}
void nb__gpu_adam(float *w, const float *g, float *m, float *v, int64_t n, float b1, float b2, float c1, float c2,
                  float step_size, float sqrt_bc2, float eps, float l2, float shrink) {
    absent("nb__gpu_adam");
}
void nb__gpu_im2col(float *col, const float *x, int64_t n, const nb_gpu_conv *g) { absent("nb__gpu_im2col"); }
void nb__gpu_col2im(float *x, const float *col, int64_t n, const nb_gpu_conv *g) { absent("nb__gpu_col2im"); }
void nb__gpu_maxpool(float *y, int64_t *idx, const float *x, const nb_gpu_pool *g) { absent("nb__gpu_maxpool"); }
void nb__gpu_maxpool_scatter(float *dx, const float *g, const int64_t *idx, const nb_gpu_pool *q) {
    absent("nb__gpu_maxpool_scatter");
}
void nb__gpu_avgpool(float *y, const float *x, const nb_gpu_pool *g) { absent("nb__gpu_avgpool"); }
void nb__gpu_avgpool_adjoint(float *dx, const float *g, const nb_gpu_pool *q) { absent("nb__gpu_avgpool_adjoint"); }
void nb__gpu_max_mid(float *o, int64_t *pos, const float *x, int64_t outer, int64_t mid, int64_t inner) {
    absent("nb__gpu_max_mid");
}
void nb__gpu_gather_at(float *o, const float *x, const int64_t *pos, int64_t n) { absent("nb__gpu_gather_at"); }
void nb__gpu_put_at(float *o, const float *g, const int64_t *pos, int64_t n) { absent("nb__gpu_put_at"); }
void nb__gpu_scatter_rows(float *o, const float *x, const int64_t *start, const int64_t *from, int64_t rows,
                          int64_t cols) {
    absent("nb__gpu_scatter_rows");
}
void nb__gpu_step(float *o, const float *x, int64_t n, float lo, float hi) { absent("nb__gpu_step"); }
void nb__gpu_prelu(float *o, const float *x, const float *a, int64_t n, int64_t C, int64_t inner) {
    absent("nb__gpu_prelu");
}
void nb__gpu_rnn_bias(float *bx, float *bh, const float *b_ih, const float *b_hh, int64_t n, bool sum) {
    absent("nb__gpu_rnn_bias");
}
void nb__gpu_rnn_fwd(int64_t B, int64_t H, const float *xw, const float *bs, const float *g, float *h) {
    absent("nb__gpu_rnn_fwd");
}
void nb__gpu_lstm_fwd(int64_t B, int64_t H, const float *xw, const float *bs, float *z, const float *cprev, float *h,
                      float *c, float *tc) {
    absent("nb__gpu_lstm_fwd");
}
void nb__gpu_gru_fwd(int64_t B, int64_t H, const float *xw, const float *bx, const float *bh, float *zg,
                     const float *hprev, float *hn, float *h) {
    absent("nb__gpu_gru_fwd");
}
void nb__gpu_rnn_bwd(int64_t B, int64_t H, const float *go, const float *dnext, const float *h, float *da) {
    absent("nb__gpu_rnn_bwd");
}
void nb__gpu_lstm_bwd(int64_t B, int64_t H, const float *goh, const float *goc, const float *dhn, float *dcn,
                      const float *act, const float *tc, const float *cprev, float *dz) {
    absent("nb__gpu_lstm_bwd");
}
void nb__gpu_gru_bwd(int64_t B, int64_t H, const float *go, float *dnext, const float *act, const float *hn,
                     const float *hprev, float *dzx, float *dzh) {
    absent("nb__gpu_gru_bwd");
}
