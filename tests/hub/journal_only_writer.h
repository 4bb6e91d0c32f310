// Test double of the parent: a ParentWriter that takes every write.
#pragma once

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "hub/apply/parent_writer.h"
#include "hub/journal/journal.h"

namespace hsync::hub::testing {

// A parent that takes every write: applies each due user through the
// journal's intent (RecordIntent + CompleteIntent), as a writer that PATCHed
// successfully would. Cheap (not budgeted), so every due user is written.
class JournalOnlyWriter : public ParentWriter {
 public:
  JournalOnlyWriter(Journal* journal, std::vector<std::string>* written)
      : journal_(journal), written_(written) {}
  WriterPass Settle(absl::Time, const UserReadyFn&, const std::atomic<bool>*) override {
    return {};
  }
  WriterPass Write(const std::vector<PendingUser>& due, const std::atomic<bool>*) override {
    WriterPass pass;
    for (const PendingUser& p : due) {
      ApplyIntent intent{p.uuid, 0, p.bytes, p.bytes, absl::Time()};
      pass.journal_error = journal_->RecordIntent(intent);
      if (pass.journal_error.ok()) pass.journal_error = journal_->CompleteIntent(p.uuid, p.bytes);
      if (!pass.journal_error.ok()) break;
      written_->push_back(p.uuid);
      UserWriteResult r;
      r.uuid = p.uuid;
      r.bytes = p.bytes;
      pass.users.push_back(std::move(r));
    }
    return pass;
  }
  absl::Status Ping() override { return absl::OkStatus(); }
  bool IsUnreachable(const absl::Status&) const override { return false; }
  bool WritesCostPanelWork() const override { return false; }

 private:
  Journal* journal_;
  std::vector<std::string>* written_;
};

}  // namespace hsync::hub::testing
