// The roster poller paces its list reads to the panel: against panelsim
// (real HTTP), a list that becomes slow (a latency fault on list_users)
// stretches the wait between reads so the panel spends at most max_share of
// its time on them, and the wait comes back to poll_interval once the list
// is fast again.
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "common/units.h"
#include "hub/roster/roster_poller.h"
#include "hub/roster/roster_source.h"
#include "hub/roster/roster_store.h"
#include "tests/hub/journal_test_helpers.h"
#include "tests/hub/parent_client_test_panel.h"

namespace hsync::hub {
namespace {

using testing::TestPanel;
using testing::TestUuid;

// Waits up to `timeout` for `done`; true when it happened.
template <typename Predicate>
bool WaitFor(Predicate done, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return done();
}

TEST(RosterPacingTest, ASlowListStretchesThePollIntervalAndItRecovers) {
  auto panel = TestPanel::Start();
  ASSERT_NE(panel, nullptr);
  for (int i = 0; i < 3; ++i) panel->CreateUser(TestUuid(i, 0x9ac), kBytesPerGiB);
  RosterStore store;
  const absl::Duration poll = absl::Milliseconds(100);
  RosterPoller poller(std::make_unique<ApiRosterSource>(panel->Client()), &store,
                      ListPacing{poll, 0.25, absl::Seconds(30)});
  poller.Start();

  // Fast list: read about every poll interval.
  absl::SleepFor(absl::Seconds(1));
  RosterPollerState fast = poller.State();
  EXPECT_GE(fast.polls, 5u);
  EXPECT_EQ(fast.effective_interval, poll);

  // 400 ms per list: at most a quarter of the time -> at least 1.6 s between reads.
  panel->AddFault({{"route", "list_users"}, {"latency_ms", 400}});
  ASSERT_TRUE(WaitFor([&] { return poller.State().last_list_duration >= absl::Milliseconds(400); },
                      absl::Seconds(5)));
  RosterPollerState slow = poller.State();
  EXPECT_GE(slow.effective_interval, absl::Milliseconds(1600));
  EXPECT_TRUE(slow.last_ok);
  absl::SleepFor(absl::Seconds(3));
  const uint64_t slow_polls = poller.State().polls - slow.polls;
  EXPECT_LE(slow_polls, 2u) << "reads in 3 s of a 400 ms list";
  EXPECT_GE(slow_polls, 1u);

  // Fast again: the interval comes back down to poll_interval.
  panel->ClearFaults();
  ASSERT_TRUE(WaitFor([&] { return poller.State().effective_interval == poll; }, absl::Seconds(15)))
      << absl::FormatDuration(poller.State().effective_interval);
  const uint64_t before = poller.State().polls;
  absl::SleepFor(absl::Seconds(1));
  EXPECT_GE(poller.State().polls - before, 5u);
  poller.Stop();
}

}  // namespace
}  // namespace hsync::hub
