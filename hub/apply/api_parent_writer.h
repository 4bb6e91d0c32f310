// ParentWriter through the parent panel's REST API (write = "api"): per due
// user one GET and one absolute PATCH, with a journal intent persisted before
// the PATCH and resolved by reading the user back after a crash or a failed
// PATCH (hub/apply/applier_user_step.h). Exact only while nothing else
// writes that user's usage (ARCHITECTURE.md "Exactly once" step 4).
#pragma once

#include <memory>

#include "absl/time/time.h"
#include "hub/apply/parent_writer.h"
#include "hub/journal/journal.h"
#include "hub/parent/parent_client.h"

namespace hsync::hub {

class ApiParentWriter : public ParentWriter {
 public:
  // An open intent that looks "not applied" is only abandoned once it is
  // `intent_settle_time` old (at least the client's request_timeout + 5 s):
  // its PATCH may still be queued in the panel.
  ApiParentWriter(Journal* journal, std::unique_ptr<ParentClient> parent,
                  absl::Duration intent_settle_time);

  WriterPass Settle(absl::Time now, const UserReadyFn& ready,
                    const std::atomic<bool>* interrupt) override;
  WriterPass Write(const std::vector<PendingUser>& due,
                   const std::atomic<bool>* interrupt) override;
  absl::Status Ping() override;
  bool IsUnreachable(const absl::Status& status) const override;
  bool WritesCostPanelWork() const override { return true; }

 private:
  Journal* journal_;
  std::unique_ptr<ParentClient> parent_;
  absl::Duration settle_time_;
};

}  // namespace hsync::hub
