// train.cpp: libdnngen from C++17. Handles live in std::unique_ptr with
// the library's destroy functions as deleters, failures become
// exceptions, and the program trains XOR to full accuracy and a small GAN
// on 2-D toy data, exiting non-zero unless both learn.
//
//   g++ -std=c++17 -Wall -Wextra -pedantic train.cpp
//       $(pkg-config --cflags --libs dnngen) -o train-cpp

#include <dnngen.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace dng {

// A failed call. The status is empty when a constructor returned NULL,
// since the C API then reports only a message.
class error : public std::runtime_error {
public:
    error(std::optional<dng_status> status, const std::string &what)
        : std::runtime_error(what), status_(status) {}
    std::optional<dng_status> status() const { return status_; }

private:
    std::optional<dng_status> status_;
};

// Turn a status into an exception carrying dng_last_error(), whose
// message already names the function and the argument at fault.
inline void check(dng_status s)
{
    if (s != DNG_OK)
        throw error(s, std::string(dng_last_error()) + " (" +
                           dng_status_string(s) + ")");
}

// The deleter for any handle: the library's destroy function, which
// accepts NULL, so an empty unique_ptr is fine too.
template <auto Destroy> struct deleter {
    template <class T> void operator()(T *p) const noexcept { Destroy(p); }
};

using tensor = std::unique_ptr<dng_tensor, deleter<dng_tensor_destroy>>;
using layer = std::unique_ptr<dng_layer, deleter<dng_layer_destroy>>;
using net = std::unique_ptr<dng_net, deleter<dng_net_destroy>>;
using optim = std::unique_ptr<dng_optim, deleter<dng_optim_destroy>>;
using rng = std::unique_ptr<dng_rng, deleter<dng_rng_destroy>>;
using gan = std::unique_ptr<dng_gan, deleter<dng_gan_destroy>>;

// Wrap a constructor's result, throwing on NULL.
template <class Ptr> Ptr own(typename Ptr::pointer p)
{
    if (!p)
        throw error(std::nullopt, dng_last_error());
    return Ptr(p);
}

inline tensor make_tensor(const std::vector<int64_t> &shape,
                          const std::vector<float> &data = {})
{
    int nd = static_cast<int>(shape.size());
    if (data.empty())
        return own<tensor>(dng_tensor_create(nd, shape.data()));
    return own<tensor>(dng_tensor_from_data(nd, shape.data(), data.data()));
}

inline net make_net(const std::vector<int64_t> &sample_shape)
{
    return own<net>(dng_net_create(static_cast<int>(sample_shape.size()),
                                   sample_shape.data()));
}

// Append a layer. dng_net_add takes the layer over in every case, also
// when it fails, so the unique_ptr lets go of it before the call. An
// empty one (a constructor that returned NULL) is passed on too: the
// library then reports that constructor's message.
inline void add(net &n, layer l)
{
    check(dng_net_add(n.get(), l.release()));
}

inline std::vector<float> values(const dng_tensor *t)
{
    std::vector<float> v(static_cast<size_t>(dng_tensor_numel(t)));
    check(dng_tensor_copy_out(t, v.data(), static_cast<int64_t>(v.size())));
    return v;
}

} // namespace dng

// XOR with a 2-8-1 tanh network, BCE on logits and Adam, by hand: forward,
// loss and its gradient, backward, step. Returns the number of the four
// points classified right.
static int train_xor()
{
    dng::net n = dng::make_net({2});
    dng::add(n, dng::layer(dng_dense(2, 8)));
    dng::add(n, dng::layer(dng_activation(DNG_ACT_TANH, 0)));
    dng::add(n, dng::layer(dng_dense(8, 1)));
    dng::optim opt = dng::own<dng::optim>(
        dng_adam(0.05f, 0.9f, 0.999f, 1e-8f, 0.0f));
    dng::tensor x = dng::make_tensor({4, 2}, {0, 0, 0, 1, 1, 0, 1, 1});
    dng::tensor t = dng::make_tensor({4, 1}, {0, 1, 1, 0});
    dng::tensor dy = dng::make_tensor({4, 1});
    float first = 0, last = 0;
    for (int i = 0; i < 400; i++) {
        dng_tensor *y = nullptr; // borrowed from the network
        dng::check(dng_net_zero_grad(n.get()));
        dng::check(dng_net_forward(n.get(), x.get(), &y));
        dng::check(dng_loss(DNG_LOSS_BCE_WITH_LOGITS, y, t.get(), &last,
                            dy.get()));
        if (i == 0)
            first = last;
        dng::check(dng_net_backward(n.get(), dy.get(), nullptr));
        dng::check(dng_optim_step(opt.get(), n.get()));
    }
    dng_tensor *y = nullptr;
    dng::check(dng_net_forward(n.get(), x.get(), &y));
    std::vector<float> logits = dng::values(y), want = dng::values(t.get());
    int right = 0;
    for (size_t i = 0; i < logits.size(); i++)
        right += (logits[i] > 0) == (want[i] > 0.5f);
    std::printf("xor: loss %.4f -> %.4f, %d/4 right\n", first, last, right);
    return right;
}

// The library's errors arrive as exceptions with the status and message.
static bool shape_error_is_reported()
{
    dng::net n = dng::make_net({3});
    dng::add(n, dng::layer(dng_dense(3, 8)));
    try {
        dng::add(n, dng::layer(dng_dense(4, 2)));
    } catch (const dng::error &e) {
        std::printf("expected error: %s\n", e.what());
        return e.status() == DNG_ERR_SHAPE &&
               std::string(e.what()).find("layer 1") != std::string::npos;
    }
    return false;
}

// Distance between the mean of G(z) over fixed z and the data's mean.
static float mean_distance(dng_gan *g, const dng_tensor *z,
                           const float target[2])
{
    dng::tensor out = dng::make_tensor({dng_tensor_dim(z, 0), 2});
    dng::check(dng_gan_generate(g, z, out.get()));
    std::vector<float> v = dng::values(out.get());
    double mx = 0, my = 0;
    for (size_t i = 0; i < v.size(); i += 2) {
        mx += v[i];
        my += v[i + 1];
    }
    mx /= static_cast<double>(v.size() / 2);
    my /= static_cast<double>(v.size() / 2);
    return static_cast<float>(std::hypot(mx - target[0], my - target[1]));
}

// A GAN whose real data are points from N((2, -1), 0.1^2): 300 steps must
// bring the generator's mean near the data's.
static bool train_gan()
{
    const float target[2] = {2.0f, -1.0f};
    dng::net g = dng::make_net({4});
    dng::add(g, dng::layer(dng_dense(4, 16)));
    dng::add(g, dng::layer(dng_activation(DNG_ACT_LEAKY_RELU, 0.2f)));
    dng::add(g, dng::layer(dng_dense(16, 2)));
    dng::net d = dng::make_net({2});
    dng::add(d, dng::layer(dng_dense(2, 16)));
    dng::add(d, dng::layer(dng_activation(DNG_ACT_LEAKY_RELU, 0.2f)));
    dng::add(d, dng::layer(dng_dense(16, 1)));
    dng::optim g_opt = dng::own<dng::optim>(
        dng_adam(2e-3f, 0.5f, 0.999f, 1e-8f, 0.0f));
    dng::optim d_opt = dng::own<dng::optim>(
        dng_adam(2e-3f, 0.5f, 0.999f, 1e-8f, 0.0f));
    // Declared after the four it borrows, so it is destroyed before them.
    dng::gan trainer = dng::own<dng::gan>(
        dng_gan_create(g.get(), d.get(), g_opt.get(), d_opt.get()));
    dng::check(dng_gan_set_seed(trainer.get(), 1));

    dng::rng data_rng = dng::own<dng::rng>(dng_rng_create(100));
    dng::tensor z = dng::make_tensor({256, 4});
    dng::check(dng_tensor_fill_normal(z.get(), data_rng.get(), 0, 1));
    dng::tensor real = dng::make_tensor({64, 2});
    float before = mean_distance(trainer.get(), z.get(), target);
    dng_gan_stats st{};
    st.size = sizeof st;
    for (int i = 0; i < 300; i++) {
        dng::check(dng_tensor_fill_normal(real.get(), data_rng.get(), 0, 0.1f));
        float *p = dng_tensor_data(real.get());
        for (int k = 0; k < 128; k++)
            p[k] += target[k % 2];
        dng::check(dng_gan_step(trainer.get(), real.get(), nullptr, &st));
    }
    float after = mean_distance(trainer.get(), z.get(), target);
    std::printf("gan: %lld steps, d_loss %.4f g_loss %.4f D(real) %.3f "
                "D(fake) %.3f; mean of G(z) %.3f -> %.3f from the data\n",
                static_cast<long long>(dng_gan_steps(trainer.get())),
                st.d_loss, st.g_loss, st.d_real, st.d_fake, before, after);
    return std::isfinite(st.d_loss) && after < 0.5f && after < before / 3;
}

int main()
{
    if (dng_version() != DNG_VERSION) {
        std::fprintf(stderr, "train-cpp: built for libdnngen %s but loaded "
                     "%s\n", DNG_VERSION_STRING, dng_version_string());
        return 1;
    }
    try {
        dng::check(dng_set_num_threads(1));
        bool ok = train_xor() == 4;
        ok = shape_error_is_reported() && ok;
        ok = train_gan() && ok;
        std::puts(ok ? "ok" : "FAIL");
        return ok ? 0 : 1;
    } catch (const dng::error &e) {
        std::fprintf(stderr, "train-cpp: %s\n", e.what());
        return 1;
    }
}
