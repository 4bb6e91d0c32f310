// ApplyTrigger over a real state schema (MariaDB): runs only while a run is
// owed (wanted generation > done), one run per burst, exit 12 retried as busy
// (not a failure), a change completed after a run started gets a run after
// it, an owed run survives a restart, a failing command is retried with
// backoff, and a hanging command times out.
#include "reporter/panel/apply_trigger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/reporter/child_db.h"
#include "tests/support/child_process.h"

namespace hsync::reporter {
namespace {

using hsync::testing::ChildDb;
using hsync::testing::WaitFor;
using ::testing::HasSubstr;

std::string TempDir() {
  char tmpl[] = "/tmp/hsync_apply_XXXXXX";
  return mkdtemp(tmpl);
}

int CountLines(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

class ApplyTriggerTest : public ::testing::Test {
 protected:
  ApplyTriggerTest() : db_("apply_trigger"), store_(db_.state_db(), true), queue_(&store_, db_.panel_db()) {
    auto state = store_.EnsureSchema(db_.conn());
    EXPECT_TRUE(state.ok()) << state.status();
    dir_ = TempDir();
  }

  // Bumps the wanted generation as the core syncer does when a change needing
  // a run is synced.
  void Owe() {
    CoreSyncRow row{hsync::testing::RandomUuid(), CoreAction::kSync, true, 1, 0, absl::Now()};
    ASSERT_TRUE(queue_.Record(db_.conn(), {{row.uuid, CoreAction::kSync, true}}, absl::Now()).ok());
    auto done = queue_.Complete(db_.conn(), row);
    ASSERT_TRUE(done.ok() && *done);
  }
  ApplyGenerations Generations() { return *queue_.ReadApply(db_.conn()); }

  // A command that appends one line per run to runs.log, sleeps `seconds`,
  // and exits with the code in exit_code (0 when the file is missing).
  std::string Command(double seconds = 0) {
    return absl::StrCat("echo run >> ", dir_, "/runs.log; sleep ", seconds, "; exit $(cat ", dir_,
                        "/exit_code 2>/dev/null || echo 0)");
  }
  void SetExitCode(int code) { std::ofstream(dir_ + "/exit_code") << code << "\n"; }
  int Runs() { return CountLines(dir_ + "/runs.log"); }

  ApplyTriggerOptions Options(const std::string& command) {
    ApplyTriggerOptions o;
    o.command = command;
    o.debounce = absl::Milliseconds(300);
    o.max_delay = absl::Seconds(3);
    o.busy_retry = absl::Milliseconds(200);
    o.timeout = absl::Seconds(5);
    o.retry_initial = absl::Milliseconds(100);
    o.retry_max = absl::Milliseconds(300);
    return o;
  }

  ChildDb db_;
  StateStore store_;
  CoreSyncQueue queue_;
  StatusBoard board_;
  std::string dir_;
};

TEST_F(ApplyTriggerTest, NothingOwedRunsNothing) {
  ApplyTrigger trigger(Options(Command()), db_.Options(), &queue_, &board_);
  trigger.Start();
  trigger.Request();
  absl::SleepFor(absl::Milliseconds(800));
  EXPECT_EQ(Runs(), 0);
  EXPECT_EQ(board_.Snapshot().apply_runs(), 0u);
}

TEST_F(ApplyTriggerTest, ABurstOfChangesRunsOnceAfterTheDebounce) {
  ApplyTrigger trigger(Options(Command()), db_.Options(), &queue_, &board_);
  trigger.Start();
  absl::SleepFor(absl::Milliseconds(200));  // the start-up check found nothing owed
  for (int i = 0; i < 5; ++i) {
    Owe();
    trigger.Request();
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(board_.Snapshot().apply_pending());
  EXPECT_EQ(Runs(), 0);  // still inside the debounce window
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().apply_runs() == 1; }, absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(800));
  EXPECT_EQ(Runs(), 1);
  EXPECT_EQ(Generations().done, 5u);
  EXPECT_FALSE(board_.Snapshot().apply_pending());
}

TEST_F(ApplyTriggerTest, ExitTwelveIsBusyAndRetriedNotAFailure) {
  SetExitCode(12);
  ApplyTrigger trigger(Options(Command()), db_.Options(), &queue_, &board_);
  Owe();
  trigger.Start();
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().apply_busy_retries() >= 2; }, absl::Seconds(5)));
  EXPECT_EQ(board_.Snapshot().apply_failures(), 0u);
  EXPECT_EQ(Generations().done, 0u);  // a refused run covers nothing
  SetExitCode(0);
  ASSERT_TRUE(WaitFor([&] { return Generations().done == 1; }, absl::Seconds(5)));
  EXPECT_EQ(board_.Snapshot().apply_runs(), 1u);
  EXPECT_TRUE(board_.Snapshot().last_error().empty());
}

TEST_F(ApplyTriggerTest, AChangeAfterARunStartedGetsAnotherRun) {
  ApplyTrigger trigger(Options(Command(/*seconds=*/1)), db_.Options(), &queue_, &board_);
  Owe();
  trigger.Start();  // the owed run starts at once
  ASSERT_TRUE(WaitFor([&] { return Runs() == 1; }, absl::Seconds(5)));
  Owe();  // committed while the run is active: that run read the database before it
  trigger.Request();
  // The run is counted before it is recorded in the state: wait for both.
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().apply_runs() == 2; }, absl::Seconds(8)));
  ASSERT_TRUE(WaitFor([&] { return Generations().done == 2u; }, absl::Seconds(2)));
  absl::SleepFor(absl::Milliseconds(700));
  EXPECT_EQ(Runs(), 2);
}

TEST_F(ApplyTriggerTest, AnOwedRunSurvivesARestart) {
  Owe();
  {
    ApplyTriggerOptions never = Options(Command());
    never.command = "exit 1";  // the first reporter never manages a run
    ApplyTrigger first(never, db_.Options(), &queue_, &board_);
    first.Start();
    ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().apply_failures() >= 1; }, absl::Seconds(5)));
  }
  EXPECT_THAT(board_.Snapshot().last_error(), HasSubstr("exited with status 1"));
  ApplyTrigger second(Options(Command()), db_.Options(), &queue_, &board_);
  second.Start();  // no Request(): the owed generation is found in the state
  ASSERT_TRUE(WaitFor([&] { return Generations().done == 1; }, absl::Seconds(5)));
  EXPECT_EQ(Runs(), 1);
}

TEST_F(ApplyTriggerTest, AHangingCommandTimesOut) {
  ApplyTriggerOptions options = Options("sleep 30");
  options.timeout = absl::Seconds(1);
  ApplyTrigger trigger(options, db_.Options(), &queue_, &board_);
  Owe();
  const absl::Time start = absl::Now();
  auto rc = trigger.RunOnce();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  ASSERT_FALSE(rc.ok());
  EXPECT_THAT(std::string(rc.status().message()), HasSubstr("timed out"));
}

}  // namespace
}  // namespace hsync::reporter
