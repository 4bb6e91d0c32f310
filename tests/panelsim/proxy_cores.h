// The proxy cores of one Hiddify server (PANEL.md §4), played: xray's live
// user set (changed by the panel's driver calls and by a restart), the
// sing-box and WireGuard user sets (changed only by an apply run), and the
// per-user byte counters the usage task takes. Only members carry traffic.
// Driver calls are counted per user. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "tests/panelsim/panel_generation.h"

namespace hsync::panelsim {

class ProxyCores {
 public:
  explicit ProxyCores(CoreType core_type) : core_type_(core_type) {}

  CoreType core_type() const { return core_type_; }

  // The panel's user_driver: add_client / remove_client for `uuid` (counted;
  // no is_active check: callers decide). With core_type xray they change
  // xray's live set; the sing-box driver's calls do nothing (it follows apply
  // runs only), so with core_type singbox nothing live changes.
  void AddClient(const std::string& uuid);
  void RemoveClient(const std::string& uuid);
  // user_driver.get_enabled_users(): xray's live set, plus the users in the
  // rendered sing-box and WireGuard configuration (those drivers read it).
  std::set<std::string> EnabledUsers() const;

  // xray restarted: its set becomes `users` (rendered from the database).
  void RestartXray(const std::vector<std::string>& users);
  // An apply run re-rendered sing-box and WireGuard from `users`.
  void RenderSingboxAndWireguard(const std::vector<std::string>& users);

  // Every user in at least one core (who can carry traffic), sorted.
  std::vector<std::string> Members() const;
  // `bytes` through each core `uuid` is a member of; returns the bytes carried
  // (bytes x number of traffic-carrying cores it is in; 0 for a non-member).
  int64_t CarryTraffic(const std::string& uuid, int64_t bytes);
  // get_users_usage(reset=True): per-user bytes since the last call, zeroed.
  std::map<std::string, int64_t> TakeUsage();
  // Puts bytes taken by TakeUsage() back (a usage task that could not store them).
  void ReturnUsage(const std::string& uuid, int64_t bytes);

  bool InXray(const std::string& uuid) const;
  bool InSingbox(const std::string& uuid) const;

  // {"core_type":..,"singbox":[..],"wireguard":[..],"xray":[..]}
  std::string ToJson() const;
  // {"<uuid>":{"add":N,"remove":N}}
  std::string DriverCallsJson() const;
  void ResetDriverCalls();

 private:
  struct Calls {
    int64_t add = 0;
    int64_t remove = 0;
  };
  const CoreType core_type_;
  mutable absl::Mutex mu_;
  std::set<std::string> xray_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> singbox_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> wireguard_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> pending_bytes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Calls> driver_calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hsync::panelsim
