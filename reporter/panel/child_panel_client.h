// The child panel's own REST API v2 (PANEL.md §1), used to make its proxy
// cores follow a user's row: PATCH /<path>/api/v2/admin/user/<uuid>/ with {}
// (the panel removes the user from every driver and adds it back when
// is_active) and DELETE of the same URL. Sends the owner's key as
// Hiddify-API-Key, Accept: application/json, a plain product User-Agent, and
// keeps one cookie jar (the panel's session cookie is sent back on every call,
// so the panel's Redis does not gain a session per call). The credentials are
// resolved from the panel's database on first use and again after a 400/401/
// 403 (the key or path may have changed). No secret reaches an error message.
// Not thread-safe: one instance per syncer thread.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "reporter/panel/core_sync_client.h"
#include "reporter/panel/panel_credentials.h"

typedef void CURL;

namespace hsync::reporter {

class ChildPanelClient : public CoreSyncClient {
 public:
  using CredentialSource = std::function<absl::StatusOr<PanelCredentials>()>;
  ChildPanelClient(CredentialSource credentials, absl::Duration timeout);
  ~ChildPanelClient() override;
  ChildPanelClient(const ChildPanelClient&) = delete;
  ChildPanelClient& operator=(const ChildPanelClient&) = delete;

  absl::Status SyncUser(const std::string& uuid) override;
  absl::Status DeleteUser(const std::string& uuid) override;

 private:
  absl::Status Call(const char* method, const std::string& uuid);

  CredentialSource source_;
  absl::Duration timeout_;
  std::optional<PanelCredentials> credentials_;
  CURL* curl_ = nullptr;
};

}  // namespace hsync::reporter
