#include "tests/panelsim/bot_detector.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace hsync::panelsim {
namespace {

// Case-insensitive tokens that mark a crawler anywhere in the first ~100
// characters (ua-parser's generic spider list, abridged to its substance).
constexpr std::string_view kAnywhereTokens[] = {
    "bot", "crawl", "spider", "slurp", "scrapy", "scraper", "scrubby", "indexer", "archiver",
    "python-urllib", "http%20client", "google-http-java-client", "winhttp", "whatweb",
    "facebookexternalhit", "yahoo", "sogou", "nutch", "larbin", "heritrix", "pingdom",
    "statuscake", "whatsapp", "masscan", "qwantify", "yeti", "zgrab", "ccbot", "htdig",
    "lycos", "teoma", "ichiro", "findlinks", "netvibes", "wordpress", "screaming frog",
    "dataparksearch", "appengine-google", "internetarchive", "pagepeeker", "zooshot",
    "favicon", "riddler", "scooter", "charlotte", "altavista", "retreiver", "tlsprober",
    "netresearch", "searchsight", "semanticdiscovery", "webthumbnail", "newsgator",
    "gomezagent", "blogbridge", "ogscrper"};
// Tokens that only count at the very start.
constexpr std::string_view kPrefixTokens[] = {"java/", "jnlp/", "ning", "voyager"};

}  // namespace

bool IsBotUserAgent(std::string_view user_agent) {
  const std::string lower = absl::AsciiStrToLower(std::string(user_agent));
  for (std::string_view prefix : kPrefixTokens) {
    if (lower.rfind(prefix, 0) == 0) return true;
  }
  for (std::string_view token : kAnywhereTokens) {
    const size_t pos = lower.find(token);
    if (pos != std::string::npos && pos <= 100) return true;
  }
  return false;
}

}  // namespace hsync::panelsim
