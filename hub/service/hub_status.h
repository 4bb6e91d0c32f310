// Builds the HubStatus answer of GetStatus from snapshots of each part of
// the hub (journal, applier, roster poller, roster store, open streams,
// configured nodes). Pure: no locks, no I/O, so it can be tested alone.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "hub/apply/applier.h"
#include "hub/apply/database_parent_writer.h"
#include "hub/parent/core_syncer.h"
#include "hub/journal/journal.h"
#include "hub/roster/roster_poller.h"
#include "hub/roster/roster_store.h"
#include "hub/roster/roster_stream.h"

namespace hsync::hub {

// What the RPC layer knows about a node since the hub started (durable
// counts such as duplicates come from the journal's streams).
struct NodeLiveState {
  uint64_t rejected = 0;           // reports refused (invalid, wrong node)
  uint32_t open_roster_streams = 0;
  uint64_t roster_version_sent = 0;  // highest version written to any of its streams
};

struct HubStatusInputs {
  std::string version;
  absl::Time started_at = absl::InfinitePast();
  JournalStats journal;
  std::vector<StreamState> streams;
  ApplierStats applier;
  RosterPollerState poller;
  uint64_t roster_version = 0;
  uint64_t roster_size = 0;
  absl::Time roster_fetched_at = absl::InfinitePast();
  uint32_t roster_watchers = 0;
  RosterStoreStats roster_store;
  RosterStreamTotals roster_streams;
  std::vector<std::string> configured_nodes;
  std::map<std::string, NodeLiveState> live;
  uint64_t auth_failures = 0;
  uint64_t auth_refused_calls = 0;
  uint32_t auth_blocked_peers = 0;
  std::string parent_write_mode = "api";
  DatabaseWriterStats database_writer;  // zero in api mode
  CoreSyncStats core_sync;              // zero in api mode
};

// One NodeStatus per node that is configured, has journaled streams or has
// an open stream, sorted by node id. A node with several streams shows the
// most recently reporting one (stream_id, last_seq, last_report_at) and the
// sums of reports, duplicates and bytes over all of them. Parent reachability and the last
// parent error come from whichever of applier and poller spoke to the parent
// most recently. roster_skipped_users are the poller's skipped users.
hiddify_sync::v1::HubStatus BuildHubStatus(const HubStatusInputs& inputs);

}  // namespace hsync::hub
