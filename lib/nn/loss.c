/* loss.c: training losses and their gradients with respect to the
 * prediction, with PyTorch's 'mean' reduction. Sums run in double so that
 * the mean over a large batch does not lose the small terms. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "core-impl.h"

/* True when the two shapes are [N] and [N, 1] in either order: a column of
 * logits against a vector of labels, which PyTorch would silently
 * broadcast to [N, N] and which is always meant elementwise here. */
static bool column_vs_vector(const dng_tensor *a, const dng_tensor *b)
{
    if (a->ndim == 2 && b->ndim == 1)
        return a->shape[1] == 1 && a->shape[0] == b->shape[0];
    if (a->ndim == 1 && b->ndim == 2)
        return b->shape[1] == 1 && a->shape[0] == b->shape[0];
    return false;
}

static dng_status shape_error(const char *what, const dng_tensor *a,
                              const char *what_b, const dng_tensor *b)
{
    char sa[160], sb[160];
    return dng__error(DNG_ERR_SHAPE, "dng_loss: %s %s does not match %s %s",
                      what, dng__shape_str(sa, sizeof sa, a->ndim, a->shape),
                      what_b,
                      dng__shape_str(sb, sizeof sb, b->ndim, b->shape));
}

/* L = sum (p - t)^2 / n; dL/dp = 2 (p - t) / n */
static double mse(const float *restrict p, const float *restrict t,
                  float *restrict g, int64_t n)
{
    /* Four partial sums let the additions overlap (and vectorise); one
     * running sum would wait on itself at every element. */
    double a[4] = {0.0, 0.0, 0.0, 0.0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) {
            double d = (double)p[i + k] - (double)t[i + k];
            a[k] += d * d;
        }
    for (; i < n; i++) {
        double d = (double)p[i] - (double)t[i];
        a[0] += d * d;
    }
    if (g) {
        /* PyTorch's mse_loss_backward scales by 2 / n in the tensor's
         * own precision; doing the same keeps the two bit-close. */
        const float k = (float)(2.0 / (double)n);
        for (int64_t j = 0; j < n; j++)
            g[j] = k * (p[j] - t[j]);
    }
    return (a[0] + a[1]) + (a[2] + a[3]);
}

/* L = sum max(x, 0) - x t + log1p(exp(-|x|)) / n;
 * dL/dx = (sigmoid(x) - t) / n */
static double bce_logits(const float *p, const float *t, float *g, int64_t n)
{
    const double inv = 1.0 / (double)n;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double x = p[i], y = t[i];
        /* exp(-|x|) never overflows, so the loss stays finite and exact
         * for logits of any size. */
        double e = exp(-fabs(x));
        s += (x > 0.0 ? x : 0.0) - x * y + log1p(e);
        if (g) {
            double sig = x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            g[i] = (float)((sig - y) * inv);
        }
    }
    return s;
}

/* L = sum max(0, 1 - t p) / n; dL/dp = -t / n where 1 - t p > 0 */
static double hinge(const float *restrict p, const float *restrict t,
                    float *restrict g, int64_t n)
{
    const double inv = 1.0 / (double)n;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double m = 1.0 - (double)t[i] * (double)p[i];
        /* 0 * m rather than 0 keeps a NaN or infinite prediction visible
         * in the sum instead of clamping it away. */
        s += m > 0.0 ? m : 0.0 * m;
    }
    if (g) {
        const float k = (float)inv;
        for (int64_t i = 0; i < n; i++)
            g[i] = 1.0f - t[i] * p[i] > 0.0f ? -t[i] * k : 0.0f;
    }
    return s;
}

/* L = sum_i (logsumexp(x_i) - x_i[y_i]) / N;
 * dL/dx_ij = (softmax(x_i)_j - [j = y_i]) / N */
static double cross_entropy(const float *x, const float *labels, float *g,
                            int64_t rows, int64_t cols)
{
    const double inv = 1.0 / (double)rows;
    double s = 0.0;
    for (int64_t i = 0; i < rows; i++) {
        const float *xr = x + i * cols;
        /* The label is read before the row of g is written, so g may share
         * its storage with x or with the labels. */
        int64_t y = (int64_t)labels[i];
        float mx = xr[0];
        double sum = 0.0, lse;
        for (int64_t j = 1; j < cols; j++)
            mx = xr[j] > mx ? xr[j] : mx;
        const double xy = (double)xr[y];
        if (g) {
            float *gr = g + i * cols;
            /* The row of g holds exp(x - max) so that exp runs once per
             * element; it becomes the softmax below. The exponentials are
             * taken in float, as PyTorch's log_softmax does (and at about
             * half the cost of double ones), and summed in double. */
            for (int64_t j = 0; j < cols; j++) {
                float e = expf(xr[j] - mx);
                gr[j] = e;
                sum += (double)e;
            }
            const double k = inv / sum;
            for (int64_t j = 0; j < cols; j++)
                gr[j] = (float)((double)gr[j] * k);
            gr[y] -= (float)inv;
        } else {
            for (int64_t j = 0; j < cols; j++)
                sum += (double)expf(xr[j] - mx);
        }
        lse = (double)mx + log(sum);
        s += lse - xy;
    }
    return s;
}

/* Class labels must be integers in [0, cols): checked before anything is
 * written so that a bad batch leaves grad untouched. */
static dng_status check_labels(const float *labels, int64_t rows,
                               int64_t cols)
{
    for (int64_t i = 0; i < rows; i++) {
        float v = labels[i];
        if (!(v >= 0.0f && v < (float)cols && v == floorf(v)))
            return dng__error(DNG_ERR_INVALID_ARGUMENT,
                              "dng_loss: target row %" PRId64 " holds %g, "
                              "which is not a class index in 0..%" PRId64,
                              i, (double)v, cols - 1);
    }
    return DNG_OK;
}

/* BCE targets are probabilities and hinge targets are signs. NaN passes
 * here on purpose: it makes the loss non-finite, which is reported as
 * DNG_ERR_NUMERIC like any other non-finite input. */
static dng_status check_targets(dng_loss_kind kind, const float *t,
                                int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float v = t[i];
        if (kind == DNG_LOSS_BCE_WITH_LOGITS && (v < 0.0f || v > 1.0f))
            return dng__error(DNG_ERR_INVALID_ARGUMENT,
                              "dng_loss: target[%" PRId64 "] = %g is "
                              "outside [0, 1]", i, (double)v);
        if (kind == DNG_LOSS_HINGE && v == v && v != 1.0f && v != -1.0f)
            return dng__error(DNG_ERR_INVALID_ARGUMENT,
                              "dng_loss: target[%" PRId64 "] = %g is "
                              "neither -1 nor +1", i, (double)v);
    }
    return DNG_OK;
}

DNG_API dng_status dng_loss(dng_loss_kind kind, const dng_tensor *pred,
                            const dng_tensor *target, float *value,
                            dng_tensor *grad)
{
    double sum, mean;
    int64_t n, divisor;
    float *g;
    dng_status s;
    DNG__CHECK_NULL(pred, "dng_loss");
    DNG__CHECK_NULL(target, "dng_loss");
    if ((int)kind < DNG_LOSS_MSE || (int)kind > DNG_LOSS_HINGE)
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_loss: unknown kind %d", (int)kind);
    if (grad && !dng__same_shape(grad, pred))
        return shape_error("grad", grad, "pred", pred);
    n = pred->numel;
    g = grad ? grad->data : NULL;

    if (kind == DNG_LOSS_CROSS_ENTROPY) {
        int64_t rows, cols;
        if (pred->ndim != 2) {
            char sp[160];
            return dng__error(DNG_ERR_SHAPE, "dng_loss: cross-entropy "
                              "expects pred [N, C], got %s",
                              dng__shape_str(sp, sizeof sp, pred->ndim,
                                             pred->shape));
        }
        rows = pred->shape[0];
        cols = pred->shape[1];
        if (!((target->ndim == 1 && target->shape[0] == rows) ||
              (target->ndim == 2 && target->shape[0] == rows &&
               target->shape[1] == 1)))
            return shape_error("cross-entropy target", target, "pred",
                               pred);
        s = check_labels(target->data, rows, cols);
        if (s != DNG_OK)
            return s;
        sum = cross_entropy(pred->data, target->data, g, rows, cols);
        divisor = rows;
    } else {
        if (!dng__same_shape(pred, target) &&
            !column_vs_vector(pred, target))
            return shape_error("target", target, "pred", pred);
        s = check_targets(kind, target->data, n);
        if (s != DNG_OK)
            return s;
        if (kind == DNG_LOSS_MSE)
            sum = mse(pred->data, target->data, g, n);
        else if (kind == DNG_LOSS_BCE_WITH_LOGITS)
            sum = bce_logits(pred->data, target->data, g, n);
        else
            sum = hinge(pred->data, target->data, g, n);
        divisor = n;
    }
    mean = sum / (double)divisor;
    /* A finite double can still overflow the float the caller receives. */
    if (!isfinite(mean) || !isfinite((float)mean))
        return dng__error(DNG_ERR_NUMERIC, "dng_loss: the loss is %g (a "
                          "prediction or target is not finite or too "
                          "large); grad is unspecified", mean);
    if (value)
        *value = (float)mean;
    return DNG_OK;
}
