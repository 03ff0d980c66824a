// Times a generation the way the benchmark reports it: the prefill until the first token's logits, then each
// later decoding step from one token (beam search: step) to the next.
#pragma once
#include <chrono>

#include "generate/generator.h"

namespace pg {

class StepClock {
 public:
  StepClock() : start_(Clock::now()), last_(start_) {}

  // Call when a step's logits are ready: the first call ends the prefill, each later one a decoding step.
  void step_done(Generation& g) {
    const Clock::time_point now = Clock::now();
    if (first_) {
      g.prefill_seconds = seconds(now - start_);
      start_ = now;
      first_ = false;
    } else {
      g.step_seconds.push_back(seconds(now - last_));
    }
    last_ = now;
  }

  // Call once generation ends: the decode time runs from the first token's logits until now.
  void finish(Generation& g) const {
    g.decode_seconds = g.step_seconds.empty() ? 0.0 : seconds(Clock::now() - start_);
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

  Clock::time_point start_, last_;
  bool first_ = true;
};

}  // namespace pg
