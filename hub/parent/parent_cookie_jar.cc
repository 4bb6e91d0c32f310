#include "hub/parent/parent_cookie_jar.h"

#include <curl/curl.h>

#include <array>

namespace hsync::hub {

// One mutex per kind of data libcurl shares (only cookies here, but libcurl
// also locks the share itself).
struct ParentCookieJar::Locks {
  std::array<std::mutex, CURL_LOCK_DATA_LAST> mu;
};

namespace {

void LockShared(CURL*, curl_lock_data data, curl_lock_access, void* userptr) {
  static_cast<std::array<std::mutex, CURL_LOCK_DATA_LAST>*>(userptr)->at(data).lock();
}

void UnlockShared(CURL*, curl_lock_data data, void* userptr) {
  static_cast<std::array<std::mutex, CURL_LOCK_DATA_LAST>*>(userptr)->at(data).unlock();
}

}  // namespace

absl::StatusOr<std::shared_ptr<ParentCookieJar>> ParentCookieJar::Create() {
  curl_global_init(CURL_GLOBAL_DEFAULT);  // refcounted; harmless when done already
  std::shared_ptr<ParentCookieJar> jar(new ParentCookieJar());
  jar->locks_ = std::make_unique<Locks>();
  CURLSH* share = curl_share_init();
  if (share == nullptr) return absl::InternalError("parent: curl_share_init failed");
  jar->share_ = share;
  if (curl_share_setopt(share, CURLSHOPT_LOCKFUNC, &LockShared) != CURLSHE_OK ||
      curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, &UnlockShared) != CURLSHE_OK ||
      curl_share_setopt(share, CURLSHOPT_USERDATA, &jar->locks_->mu) != CURLSHE_OK ||
      curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE) != CURLSHE_OK) {
    return absl::InternalError("parent: cannot set up the shared cookie jar");
  }
  return jar;
}

ParentCookieJar::~ParentCookieJar() {
  if (share_ != nullptr) curl_share_cleanup(static_cast<CURLSH*>(share_));
}

std::unique_lock<std::mutex> ParentCookieJar::EnterRequest() {
  if (has_cookie()) return {};
  std::unique_lock<std::mutex> lock(first_request_mu_);
  if (has_cookie()) lock.unlock();  // another client's request brought the cookie meanwhile
  return lock;
}

}  // namespace hsync::hub
