#include "tests/support/metrics_scrape.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/support/http_client.h"

namespace hsync::testing {

double Scrape::Get(const std::string& name) const {
  auto it = series.find(name);
  return it == series.end() ? -1 : it->second;
}

absl::StatusOr<Scrape> ScrapeMetrics(int port) {
  TestHttpClient http(absl::StrCat("http://127.0.0.1:", port));
  absl::StatusOr<HttpResponse> answer = http.Request("GET", "/metrics");
  if (!answer.ok()) return answer.status();
  if (answer->status != 200) {
    return absl::InternalError(absl::StrCat("/metrics answered HTTP ", answer->status));
  }
  Scrape scrape;
  scrape.body = answer->body;
  for (absl::string_view line : absl::StrSplit(scrape.body, '\n', absl::SkipEmpty())) {
    if (line.front() == '#') continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtod(line.substr(space + 1), &value)) {
      return absl::DataLossError(absl::StrCat("not a sample line: ", line));
    }
    scrape.series[std::string(line.substr(0, space))] = value;
  }
  return scrape;
}

}  // namespace hsync::testing
