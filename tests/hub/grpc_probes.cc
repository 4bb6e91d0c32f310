#include "tests/hub/grpc_probes.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace hsync::hub::testing {
namespace {

constexpr char kHealthCheck[] = "/grpc.health.v1.Health/Check";
constexpr char kReflection[] = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

grpc::ByteBuffer ToBuffer(const google::protobuf::Message& message) {
  const std::string bytes = message.SerializeAsString();
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

bool FromBuffer(const grpc::ByteBuffer& buffer, google::protobuf::Message* message) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return message->ParseFromString(bytes);
}

// Waits for the one operation in flight (tagged `tag`); true when it succeeded.
bool Await(grpc::CompletionQueue& cq, void* tag, absl::Duration timeout) {
  void* got = nullptr;
  bool ok = false;
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout);
  return cq.AsyncNext(&got, &ok, deadline) == grpc::CompletionQueue::GOT_EVENT && got == tag && ok;
}

void* Tag(int n) { return reinterpret_cast<void*>(static_cast<intptr_t>(n)); }

}  // namespace

absl::StatusOr<int> HealthCheck(const std::shared_ptr<grpc::Channel>& channel,
                                const std::string& service, absl::Duration timeout) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  probes::HealthCheckRequest request;
  request.set_service(service);
  auto call = stub.PrepareUnaryCall(&context, kHealthCheck, ToBuffer(request), &cq);
  call->StartCall();
  grpc::ByteBuffer answer;
  grpc::Status status;
  call->Finish(&answer, &status, Tag(1));
  void* got = nullptr;
  bool ok = false;
  cq.Next(&got, &ok);
  cq.Shutdown();
  while (cq.Next(&got, &ok)) {
  }
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  probes::HealthCheckResponse response;
  if (!FromBuffer(answer, &response)) return absl::DataLossError("bad HealthCheckResponse");
  return static_cast<int>(response.status());
}

ReflectionDescriptorDatabase::ReflectionDescriptorDatabase(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)), stub_(channel_) {
  context_.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  call_ = stub_.PrepareCall(&context_, kReflection, &cq_);
  call_->StartCall(Tag(1));
  if (!Await(cq_, Tag(1), absl::Seconds(10))) {
    status_ = absl::UnavailableError("cannot open the reflection stream");
  }
}

ReflectionDescriptorDatabase::~ReflectionDescriptorDatabase() {
  if (status_.ok()) {
    call_->WritesDone(Tag(2));
    Await(cq_, Tag(2), absl::Seconds(5));
    grpc::Status finish;
    call_->Finish(&finish, Tag(3));
    Await(cq_, Tag(3), absl::Seconds(5));
  } else {
    context_.TryCancel();
  }
  cq_.Shutdown();
  void* got = nullptr;
  bool ok = false;
  while (cq_.Next(&got, &ok)) {
  }
}

absl::StatusOr<probes::ServerReflectionResponse> ReflectionDescriptorDatabase::Ask(
    const probes::ServerReflectionRequest& request) {
  if (!status_.ok()) return status_;
  call_->Write(ToBuffer(request), Tag(4));
  if (!Await(cq_, Tag(4), absl::Seconds(10))) return absl::UnavailableError("reflection write failed");
  grpc::ByteBuffer answer;
  call_->Read(&answer, Tag(5));
  if (!Await(cq_, Tag(5), absl::Seconds(10))) return absl::UnavailableError("reflection read failed");
  probes::ServerReflectionResponse response;
  if (!FromBuffer(answer, &response)) return absl::DataLossError("bad ServerReflectionResponse");
  if (response.has_error_response()) {
    return absl::NotFoundError(absl::StrCat("reflection error ", response.error_response().error_code(),
                                            ": ", response.error_response().error_message()));
  }
  return response;
}

absl::StatusOr<std::vector<std::string>> ReflectionDescriptorDatabase::ListServices() {
  probes::ServerReflectionRequest request;
  request.set_list_services("*");
  absl::StatusOr<probes::ServerReflectionResponse> response = Ask(request);
  if (!response.ok()) return response.status();
  std::vector<std::string> names;
  for (const auto& service : response->list_services_response().service()) {
    names.push_back(service.name());
  }
  return names;
}

bool ReflectionDescriptorDatabase::TakeFiles(const probes::ServerReflectionResponse& response,
                                             google::protobuf::FileDescriptorProto* first) {
  bool have_first = false;
  for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    if (!file.ParseFromString(bytes)) return false;
    if (!have_first) {
      *first = file;
      have_first = true;
    }
    files_[file.name()] = std::move(file);
  }
  return have_first;
}

bool ReflectionDescriptorDatabase::FindFileByName(const std::string& filename,
                                                  google::protobuf::FileDescriptorProto* output) {
  if (auto it = files_.find(filename); it != files_.end()) {
    *output = it->second;
    return true;
  }
  probes::ServerReflectionRequest request;
  request.set_file_by_filename(filename);
  absl::StatusOr<probes::ServerReflectionResponse> response = Ask(request);
  return response.ok() && TakeFiles(*response, output);
}

bool ReflectionDescriptorDatabase::FindFileContainingSymbol(
    const std::string& symbol_name, google::protobuf::FileDescriptorProto* output) {
  probes::ServerReflectionRequest request;
  request.set_file_containing_symbol(symbol_name);
  absl::StatusOr<probes::ServerReflectionResponse> response = Ask(request);
  return response.ok() && TakeFiles(*response, output);
}

bool ReflectionDescriptorDatabase::FindFileContainingExtension(
    const std::string& /*containing_type*/, int /*field_number*/,
    google::protobuf::FileDescriptorProto* /*output*/) {
  return false;
}

}  // namespace hsync::hub::testing
