// A child's periodic reset followed, before the reporter's next collect, by a
// roster update of the same user (any change on the parent: here its comment).
// The roster applier writes the parent's last_reset_time over the child's new
// one; the reset must still count as a reset, or the bytes reported before it
// (the watermark) are subtracted from the traffic after it and lost.
// Deterministic: traffic is added by hand (/_sim/add_traffic), the steps run
// between two collects of the child (checked; retried if a collect slipped in).
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "tests/e2e/system_under_test.h"

namespace hsync::e2e {
namespace {

absl::Status AddTraffic(ChildNode& child, const std::string& uuid, uint64_t bytes) {
  auto r = child.panel().Control("POST", "/_sim/add_traffic",
                                 absl::StrCat("{\"uuid\":\"", uuid, "\",\"bytes\":", bytes, "}"));
  if (!r.ok()) return r.status();
  if (r->status != 200) return absl::InternalError(absl::StrCat("add_traffic -> ", r->body));
  return absl::OkStatus();
}

// Waits for the next collect of `child` and returns its time.
absl::StatusOr<absl::Time> NextCollect(ChildNode& child) {
  auto first = child.reporter().Status();
  if (!first.ok()) return first.status();
  const absl::Time seen = FromProtoTimestamp(first->last_collect_at());
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    auto status = child.reporter().Status();
    if (status.ok() && FromProtoTimestamp(status->last_collect_at()) > seen) {
      return FromProtoTimestamp(status->last_collect_at());
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("no collect within 20 s");
}

TEST(ResetRosterRace, RosterUpdateBetweenResetAndCollectKeepsEveryByte) {
  SystemOptions options;
  options.children = 2;
  options.parent_users = 10;
  options.seed = E2eSeed();
  auto sut_or = SystemUnderTest::Start(options);
  ASSERT_TRUE(sut_or.ok()) << sut_or.status();
  SystemUnderTest& sut = **sut_or;
  auto users = sut.ParentUsers();
  ASSERT_TRUE(users.ok());
  std::string uuid;
  for (const auto& u : *users) {
    if (u.value("is_active", false)) uuid = u.value("uuid", "");
  }
  ASSERT_FALSE(uuid.empty());
  auto baseline = sut.Snapshot();
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  ChildNode& child = sut.child(0);

  bool raced = false;
  for (int attempt = 0; attempt < 3 && !raced; ++attempt) {
    // Bytes reported before the reset: the watermark.
    ASSERT_TRUE(AddTraffic(child, uuid, 1'000'000 + attempt).ok());
    ASSERT_TRUE(sut.StopTrafficAndDrain(absl::Seconds(60)).ok());
    // Right after a collect: the reset, the roster update, new traffic.
    auto collected = NextCollect(child);
    ASSERT_TRUE(collected.ok()) << collected.status();
    ASSERT_TRUE(sut.ResetOnChild(0, uuid).ok());
    const std::string comment = absl::StrCat("changed after the reset ", attempt);
    auto patched = sut.parent().Api("PATCH", absl::StrCat("admin/user/", uuid, "/"),
                                    absl::StrCat("{\"comment\":\"", comment, "\"}"));
    ASSERT_TRUE(patched.ok() && patched->status == 200);
    const bool applied = hsync::testing::WaitFor(
        [&] {
          auto rows = child.Users();
          if (!rows.ok()) return false;
          for (const auto& row : *rows) {
            if (row.uuid == uuid) return row.columns.at("comment") == comment;
          }
          return false;
        },
        absl::Seconds(4));
    ASSERT_TRUE(applied) << "the roster update did not reach the child";
    // More traffic after the reset than before it.
    ASSERT_TRUE(AddTraffic(child, uuid, 3'000'000).ok());
    auto status = child.reporter().Status();
    ASSERT_TRUE(status.ok());
    raced = FromProtoTimestamp(status->last_collect_at()) == *collected;
    if (!raced) std::printf("a collect came in between; trying again\n");
  }
  ASSERT_TRUE(raced) << "could not place reset + roster update between two collects";
  ASSERT_TRUE(sut.StopTrafficAndDrain(absl::Seconds(60)).ok());
  auto usage = sut.CompareWithBaseline(*baseline);
  ASSERT_TRUE(usage.ok());
  EXPECT_TRUE(usage->exact()) << usage->Summary();
  EXPECT_EQ(usage->wiped_bytes, 0u) << "the reset came right after a collect: nothing to wipe";
}

}  // namespace
}  // namespace hsync::e2e
