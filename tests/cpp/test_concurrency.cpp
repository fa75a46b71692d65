// Concurrency stress test of the engine's thread-safety rule (cpp/concurrency.hpp): threads share
// one Network and its Layers and take the guards exactly as the bindings do. Readers compute logits
// while writers evolve, replace the state and train; every logits answer must equal one of the
// states a serial replay passes through, and the final state must equal the serial one bit for bit.
// Built with the other C++ tests; scripts/sanitize.sh runs it under ASan/UBSan.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "expect.hpp"
#include "network.hpp"

namespace {

using motifcore::Layer;
using motifcore::LayerConfig;
using motifcore::Network;

using motifcore_test::g_failures;

constexpr int64_t kIn = 40, kHidden = 64, kOut = 5, kRows = 24, kSteps = 400;

std::unique_ptr<Network> make_network() {
    LayerConfig a{kIn, kHidden, 2, 2, 0.3, 0.0, motifcore::BiasMode::Neuron, motifcore::Activation::ReLU, 11, 1};
    LayerConfig b{kHidden, kOut, 1, 1, 0.5, 0.0, motifcore::BiasMode::Neuron, motifcore::Activation::Linear, 12, 1};
    std::vector<std::shared_ptr<Layer>> layers{std::make_shared<Layer>(a), std::make_shared<Layer>(b)};
    return std::make_unique<Network>(layers, 1);
}

struct Data {
    std::vector<float> X, Xt;
    std::vector<int64_t> y;
    Data() : X(kRows * kIn), Xt(kRows * kIn), y(kRows) {
        motifcore::Rng rng(5);
        for (auto& v : X) v = static_cast<float>(rng.uniform() * 2 - 1);
        for (auto& v : Xt) v = static_cast<float>(rng.uniform() * 2 - 1);
        for (int64_t i = 0; i < kRows; ++i) y[i] = i % kOut;
    }
};

// Step k of the writer's program: a training step, an evolution of one layer, or a state reset of
// layer 1 to its own current values (exercises set_state's reallocation).
void writer_step(Network& net, const Data& d, int k) {
    if (k % 3 == 0) {
        const auto g = net.guard();
        net.train_step(d.X.data(), d.y.data(), kRows, 0.05f, motifcore::TrainConfig{});
    } else if (k % 3 == 1) {
        Layer& l = *net.layers[k % 2];
        const auto g = l.guard();
        l.prune_regrow(0.3, static_cast<uint64_t>(k), motifcore::RegrowInit::He);
    } else {
        Layer& l = *net.layers[1];
        const auto g = l.guard();
        l.set_state(l.pattern().indptr(), l.pattern().indices(), l.weights(), l.bias(),
                    l.optimizer_state().weight_velocity(), l.optimizer_state().bias_velocity());
    }
}

std::vector<float> logits_of(Network& net, const Data& d) {
    std::vector<float> out(kRows * kOut);
    const auto g = net.guard();
    net.logits(d.Xt.data(), kRows, out.data(), 7);
    return out;
}

void test_readers_and_writer() {
    const Data d;
    // serial replay: the logits after every step
    auto serial = make_network();
    std::vector<std::vector<float>> expected{logits_of(*serial, d)};
    for (int k = 0; k < kSteps; ++k) {
        writer_step(*serial, d, k);
        expected.push_back(logits_of(*serial, d));
    }
    auto net = make_network();
    std::atomic<bool> done{false};
    std::atomic<int> unknown{0}, answers{0};
    auto reader = [&] {
        while (!done.load()) {
            const auto z = logits_of(*net, d);
            bool found = false;
            for (const auto& e : expected) found = found || std::memcmp(e.data(), z.data(), z.size() * 4) == 0;
            if (!found) ++unknown;
            ++answers;
        }
    };
    std::thread r1(reader), r2(reader);
    std::thread w([&] {
        for (int k = 0; k < kSteps; ++k) writer_step(*net, d, k);
        done = true;
    });
    w.join();
    r1.join();
    r2.join();
    std::printf("%d logits answers during %d writer steps\n", answers.load(), static_cast<int>(kSteps));
    EXPECT(unknown.load() == 0);
    EXPECT(answers.load() > 0);
    for (size_t l = 0; l < 2; ++l) {
        EXPECT(net->layers[l]->pattern().indices() == serial->layers[l]->pattern().indices());
        EXPECT(net->layers[l]->weights() == serial->layers[l]->weights());
        EXPECT(net->layers[l]->bias() == serial->layers[l]->bias());
    }
}

void test_guard_orders_overlapping_sets() {
    // Two threads guard {net, layers} and {layer 1}: a lock-order bug would deadlock here (ctest's
    // TIMEOUT turns that into a failure).
    auto net = make_network();
    std::thread a([&] {
        for (int i = 0; i < 2000; ++i) const auto g = net->guard();
    });
    std::thread b([&] {
        for (int i = 0; i < 2000; ++i) const auto g = net->layers[1]->guard();
    });
    a.join();
    b.join();
}

}  // namespace

int main() {
    test_readers_and_writer();
    std::printf("%s readers_and_writer\n", g_failures == 0 ? "ok  " : "FAIL");
    const int before = g_failures;
    test_guard_orders_overlapping_sets();
    std::printf("%s guard_orders_overlapping_sets\n", g_failures == before ? "ok  " : "FAIL");
    return g_failures == 0 ? 0 : 1;
}
