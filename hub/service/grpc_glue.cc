#include "hub/service/grpc_glue.h"

#include <memory>
#include <vector>

namespace hsync::hub {
namespace {

constexpr size_t kCopyBelowBytes = 512;

void ReleaseOwner(void* owner) { delete static_cast<std::shared_ptr<const std::string>*>(owner); }

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

grpc::ByteBuffer ToByteBuffer(const EncodedMessage& message) {
  std::vector<grpc::Slice> slices;
  slices.reserve(message.pieces.size());
  for (const EncodedMessage::Piece& piece : message.pieces) {
    const char* data = piece.owner->data() + piece.offset;
    if (piece.size < kCopyBelowBytes) {
      slices.emplace_back(data, piece.size);
      continue;
    }
    auto* owner = new std::shared_ptr<const std::string>(piece.owner);
    slices.emplace_back(const_cast<char*>(data), piece.size, &ReleaseOwner, owner);
  }
  if (slices.empty()) slices.emplace_back();  // an empty message
  return grpc::ByteBuffer(slices.data(), slices.size());
}

std::string ClientMetadata(const grpc::CallbackServerContext& context, const std::string& key) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(key);
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace hsync::hub
