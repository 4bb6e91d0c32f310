// Streams the rows of a text query straight off the wire (mysql_use_result)
// over this thread's own libmariadb connection, without materialising them:
// for the 10,000-user list, where copying every cell twice costs more than
// rendering it. Reconnects once when the server went away.
#pragma once

#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

struct st_mysql;

namespace hsync::panelsim {

// One row: a text slice per column (nullopt = NULL), valid during the callback only.
using RowCells = std::vector<std::optional<std::string_view>>;

class RowStreamer {
 public:
  // This thread's streamer (connects lazily with DbSession's options).
  static RowStreamer& ForThisThread();
  ~RowStreamer();

  // Runs `sql` and calls `each` for every row, in order.
  absl::Status Stream(std::string_view sql, const std::function<void(const RowCells&)>& each);

 private:
  RowStreamer() = default;
  absl::Status Connect();
  void Disconnect();
  st_mysql* mysql_ = nullptr;
};

}  // namespace hsync::panelsim
