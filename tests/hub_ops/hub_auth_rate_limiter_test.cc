// AuthRateLimiter: 10 failures within 60 s from one address block it for the
// cool-down; loopback is blocked like any address (a local forwarder relays
// the whole internet from 127.0.0.1); only the unix operator socket is never
// blocked; other addresses are unaffected; the window and the cool-down
// expire; memory stays bounded under a flood of addresses.
#include "hub/service/auth_rate_limiter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace hsync::hub {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

TEST(PeerAddress, StripsThePortAndBrackets) {
  EXPECT_EQ(PeerAddress("ipv4:192.0.2.7:51234"), "192.0.2.7");
  EXPECT_EQ(PeerAddress("ipv6:[2001:db8::1]:443"), "2001:db8::1");
  EXPECT_EQ(PeerAddress("unix:/run/x.sock"), "unix:/run/x.sock");
}

TEST(AuthRateLimiter, TenFailuresInAWindowBlockThatAddressForTheCoolDown) {
  AuthRateLimiter limiter;
  const std::string peer = "ipv4:192.0.2.7:1000";
  for (int i = 0; i < 9; ++i) {
    limiter.RecordFailure(absl::StrCat("ipv4:192.0.2.7:", 1000 + i), kT0 + absl::Seconds(i));
    EXPECT_FALSE(limiter.Blocked(peer, kT0 + absl::Seconds(i)));
  }
  limiter.RecordFailure(peer, kT0 + absl::Seconds(9));
  EXPECT_TRUE(limiter.Blocked("ipv4:192.0.2.7:9999", kT0 + absl::Seconds(10)));
  EXPECT_FALSE(limiter.Blocked("ipv4:192.0.2.8:1000", kT0 + absl::Seconds(10)));
  EXPECT_EQ(limiter.blocked_peers(kT0 + absl::Seconds(10)), 1u);
  EXPECT_TRUE(limiter.Blocked(peer, kT0 + absl::Seconds(68)));
  EXPECT_FALSE(limiter.Blocked(peer, kT0 + absl::Seconds(70)));
  EXPECT_EQ(limiter.failures(), 10u);
  EXPECT_EQ(limiter.blocked_calls(), 2u);
  // After the cool-down the count starts afresh.
  limiter.RecordFailure(peer, kT0 + absl::Seconds(71));
  EXPECT_FALSE(limiter.Blocked(peer, kT0 + absl::Seconds(71)));
}

TEST(AuthRateLimiter, BlockingAnAddressIsLoggedOnceWithItsAddress) {
  AuthRateLimiter limiter;
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 9; ++i) limiter.RecordFailure("ipv4:198.51.100.4:7", kT0);
  const std::string before = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(before.find("blocking"), std::string::npos) << before;
  ::testing::internal::CaptureStderr();
  limiter.RecordFailure("ipv4:198.51.100.4:7", kT0);
  limiter.Blocked("ipv4:198.51.100.4:8", kT0);  // refused calls are counted, not logged
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, ::testing::HasSubstr("auth: blocking 198.51.100.4 for 1m after 10 failed "
                                        "authentications within 1m"));
  EXPECT_EQ(log.find("blocking", log.find("blocking") + 1), std::string::npos) << log;
}

TEST(AuthRateLimiter, FailuresSpreadBeyondTheWindowDoNotBlock) {
  AuthRateLimiter limiter;
  for (int i = 0; i < 30; ++i) {
    limiter.RecordFailure("ipv6:[2001:db8::5]:1", kT0 + absl::Seconds(7 * i));
    EXPECT_FALSE(limiter.Blocked("ipv6:[2001:db8::5]:2", kT0 + absl::Seconds(7 * i)));
  }
}

TEST(AuthRateLimiter, LoopbackIsBlockedLikeAnyOtherAddress) {
  AuthRateLimiter limiter;
  for (int i = 0; i < 9; ++i) limiter.RecordFailure(absl::StrCat("ipv4:127.0.0.1:", 5000 + i), kT0);
  EXPECT_FALSE(limiter.Blocked("ipv4:127.0.0.1:6000", kT0));
  limiter.RecordFailure("ipv4:127.0.0.1:5009", kT0);
  EXPECT_TRUE(limiter.Blocked("ipv4:127.0.0.1:6001", kT0));
  EXPECT_EQ(limiter.blocked_peers(kT0), 1u);
  // ::1 is another address, with its own count.
  EXPECT_FALSE(limiter.Blocked("ipv6:[::1]:5", kT0));
  for (int i = 0; i < 10; ++i) limiter.RecordFailure("ipv6:[::1]:5", kT0);
  EXPECT_TRUE(limiter.Blocked("ipv6:[::1]:6", kT0));
  EXPECT_EQ(limiter.failures(), 20u);
}

TEST(AuthRateLimiter, TheUnixOperatorSocketIsCountedButNeverBlocked) {
  AuthRateLimiter limiter;
  for (int i = 0; i < 50; ++i) limiter.RecordFailure("unix:", kT0);
  EXPECT_FALSE(limiter.Blocked("unix:", kT0));
  EXPECT_FALSE(limiter.Blocked("unix:/run/hiddify-sync/hub.sock", kT0));
  EXPECT_EQ(limiter.failures(), 50u);
  EXPECT_EQ(limiter.blocked_peers(kT0), 0u);
}

TEST(AuthRateLimiter, AFloodOfAddressesStaysBounded) {
  AuthRateLimits limits;
  limits.max_tracked_peers = 100;
  AuthRateLimiter limiter(limits);
  for (int i = 0; i < 1000; ++i) {
    limiter.RecordFailure(absl::StrCat("ipv4:10.0.", i / 256, ".", i % 256, ":1"), kT0);
  }
  EXPECT_EQ(limiter.failures(), 1000u);
  // Old entries go once they are stale, so new addresses are tracked again.
  for (int i = 0; i < 10; ++i) limiter.RecordFailure("ipv4:192.0.2.99:1", kT0 + absl::Minutes(5));
  EXPECT_TRUE(limiter.Blocked("ipv4:192.0.2.99:1", kT0 + absl::Minutes(5)));
}

}  // namespace
}  // namespace hsync::hub
