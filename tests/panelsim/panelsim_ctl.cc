// panelsim-ctl: `/opt/hiddify-manager/install.sh <args>` for tests. Asks the
// panelsim on --host/--port (started with --control) for one install.sh run
// with <args> (POST /_sim/apply_users) and exits with the run's exit code:
// 0 done, 12 another run was active. 1 (and a message on stderr) when the
// panelsim cannot be reached or answers something else; 2 on bad usage.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <httplib.h>

#include "nlohmann/json.hpp"

namespace {

constexpr char kUsage[] =
    "usage: panelsim-ctl --port P [--host 127.0.0.1] <install.sh args...>\n"
    "  e.g. panelsim-ctl --port 8080 apply_users --no-gui\n";

int Usage() {
  std::fputs(kUsage, stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--port" || arg == "--host") && i + 1 < argc && args.empty()) {
      const std::string value = argv[++i];
      if (arg == "--host") {
        host = value;
      } else {
        char* end = nullptr;
        const long parsed = std::strtol(value.c_str(), &end, 10);
        if (end == value.c_str() || *end != '\0' || parsed <= 0 || parsed > 65535) return Usage();
        port = static_cast<int>(parsed);
      }
      continue;
    }
    args.push_back(arg);
  }
  if (port == 0) return Usage();

  httplib::Client client(host, port);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(3600, 0);  // a run takes as long as panelsim says
  const nlohmann::json body = {{"args", args}};
  httplib::Result result = client.Post("/_sim/apply_users", body.dump(), "application/json");
  if (!result) {
    std::fprintf(stderr, "panelsim-ctl: cannot reach panelsim at %s:%d: %s\n", host.c_str(), port,
                 httplib::to_string(result.error()).c_str());
    return 1;
  }
  const nlohmann::json answer = nlohmann::json::parse(result->body, nullptr, false);
  if (result->status != 200 || !answer.is_object() || !answer.contains("exit") ||
      !answer["exit"].is_number_integer()) {
    std::fprintf(stderr, "panelsim-ctl: unexpected answer from panelsim (HTTP %d): %.200s\n",
                 result->status, result->body.c_str());
    return 1;
  }
  return answer["exit"].get<int>();
}
