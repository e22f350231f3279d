// Waiting for a state in tests: poll a condition until it holds, within a
// generous bound, rather than sleep for a guessed time (the machine may be
// loaded).
//
//   EXPECT_TRUE(Eventually([&] { return Running(pid); }));
//   ASSERT_TRUE(Eventually([&] { return Done(); }, absl::Seconds(60)));
#ifndef OMD_TESTING_EVENTUALLY_H_
#define OMD_TESTING_EVENTUALLY_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace omd::testing {

// Whether `condition()` held at some poll (every 20 ms) within `within`.
template <typename Condition>
bool Eventually(Condition condition, absl::Duration within = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + within;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return condition();
}

}  // namespace omd::testing

#endif  // OMD_TESTING_EVENTUALLY_H_
