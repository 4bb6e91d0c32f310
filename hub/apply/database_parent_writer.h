// ParentWriter into the parent panel's own MariaDB (write = "database", the
// hub on the parent server): each batch of due users is ONE transaction on
// the parent that adds the bytes as the panel's usage task does (PANEL.md §3:
// current_usage + b, last_online = the later one, start_date = today when
// unset) and inserts the batch id into the hub's own table on that server.
// The journal records the batch before the transaction; after a crash the
// presence of that id says whether it applied (Settle): exactly once, no
// read-back, whatever else writes current_usage.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/time/civil_time.h"
#include "hub/apply/parent_writer.h"
#include "hub/journal/journal.h"
#include "hub/parent/parent_database.h"

namespace hsync::hub {

// What the writer did since it was made (for HubStatus).
struct DatabaseWriterStats {
  uint64_t batches_applied = 0;
  absl::Time last_batch_at = absl::InfinitePast();
  uint32_t last_batch_users = 0;
  uint64_t in_doubt_resolved = 0;  // open batches settled (applied or not)
  uint64_t db_errors = 0;
  std::string last_db_error;
  absl::Time last_db_error_at = absl::InfinitePast();
};

class DatabaseParentWriter : public ParentWriter {
 public:
  // `today`: the parent's local date (start_date of a package that starts).
  DatabaseParentWriter(Journal* journal, std::unique_ptr<ParentDatabase> db,
                       std::function<absl::CivilDay()> today);

  // Open batches (all users; per-user readiness does not matter, nothing is
  // written): id present on the parent -> CompleteBatch, absent -> AbandonBatch.
  // A transaction of ours still committing holds the id's row lock: the
  // locking read waits for it rather than misjudging it.
  WriterPass Settle(absl::Time now, const UserReadyFn& ready,
                    const std::atomic<bool>* interrupt) override;
  // One batch for all of `due` (interrupt is not looked at: a batch is atomic).
  WriterPass Write(const std::vector<PendingUser>& due,
                   const std::atomic<bool>* interrupt) override;
  absl::Status Ping() override;
  bool IsUnreachable(const absl::Status& status) const override;
  bool WritesCostPanelWork() const override { return false; }

  // Deletes ids of batches settled more than `age` ago from the parent's
  // table (never one the journal still has open). Returns how many went.
  absl::StatusOr<uint64_t> PruneAppliedBatches(absl::Duration age);

  // Safe from any thread.
  DatabaseWriterStats Stats() const;

 private:
  struct ParentOutcome;
  // Runs the batch's transaction. `*commit_sent` tells whether a failure may
  // have committed anyway (COMMIT sent, answer lost).
  absl::Status ApplyOnParent(const ApplyBatch& batch, const std::vector<PendingUser>& due,
                             ParentOutcome& out, bool* commit_sent);
  // The parent's rows of `uuids` as roster users (for the roster fold).
  absl::Status ReadUsers(MariaDbConnection& conn, const std::vector<std::string>& uuids,
                         std::vector<hiddify_sync::v1::User>& users);

  Journal* journal_;
  std::unique_ptr<ParentDatabase> db_;
  std::function<absl::CivilDay()> today_;
  absl::Time last_prune_ = absl::InfinitePast();

  void NoteDbError(const absl::Status& status);
  mutable std::mutex stats_mu_;
  DatabaseWriterStats stats_;  // guarded by stats_mu_
};

}  // namespace hsync::hub
