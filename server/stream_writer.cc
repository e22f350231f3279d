#include "server/stream_writer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "log/log.h"
#include "rpc/status.h"

namespace omd::server {

// gRPC's side of one stream: forwards each reaction, and keeps the stream
// alive until the call is done.
class StreamWriter::Reactor final : public grpc::ServerWriteReactor<v1::Envelope> {
 public:
  explicit Reactor(std::shared_ptr<StreamWriter> stream) : stream_(std::move(stream)) {}

  void OnWriteDone(bool ok) override { stream_->WriteDone(ok); }
  void OnCancel() override { stream_->Cancelled(); }
  void OnDone() override {
    stream_->Done();
    delete this;
  }

 private:
  const std::shared_ptr<StreamWriter> stream_;
};

void OpenStreams::FinishAll(const absl::Status& status) {
  std::vector<std::shared_ptr<StreamWriter>> streams;
  {
    sync::MutexLock lock(&mutex_);
    finishing_ = true;
    finish_status_ = status;
    for (const auto& [raw, weak] : streams_) {
      if (std::shared_ptr<StreamWriter> stream = weak.lock()) streams.push_back(stream);
    }
  }
  for (const std::shared_ptr<StreamWriter>& stream : streams) stream->Finish(status);
}

size_t OpenStreams::size() const {
  sync::MutexLock lock(&mutex_);
  return streams_.size();
}

bool OpenStreams::Add(StreamWriter* stream, const std::shared_ptr<StreamWriter>& shared,
                      absl::Status* status) {
  if (open_count_ != nullptr) open_count_->fetch_add(1);
  sync::MutexLock lock(&mutex_);
  streams_.emplace(stream, shared);
  if (finishing_) *status = finish_status_;
  return !finishing_;
}

void OpenStreams::Remove(StreamWriter* stream) {
  {
    sync::MutexLock lock(&mutex_);
    streams_.erase(stream);
  }
  if (open_count_ != nullptr) open_count_->fetch_sub(1);
}

StreamWriter::StreamWriter(std::shared_ptr<const AdmittedRequest> request,
                           std::string method_path, size_t max_queued, OpenStreams* open)
    : request_(std::move(request)),
      method_path_(std::move(method_path)),
      max_queued_(max_queued),
      open_(open) {}

StreamWriter::Started StreamWriter::Start(std::shared_ptr<const AdmittedRequest> request,
                                          std::string method_path, size_t max_queued,
                                          OpenStreams* open) {
  std::shared_ptr<StreamWriter> stream(
      new StreamWriter(std::move(request), std::move(method_path), max_queued, open));
  auto* reactor = new Reactor(stream);
  {
    sync::MutexLock lock(&stream->mutex_);
    stream->reactor_ = reactor;
  }
  absl::Status stopping;
  const bool refused = !open->Add(stream.get(), stream, &stopping);
  if (refused) stream->Finish(stopping);
  return {reactor, std::move(stream), refused};
}

bool StreamWriter::Write(std::string payload) {
  grpc::ServerWriteReactor<v1::Envelope>* reactor = nullptr;
  const v1::Envelope* next = nullptr;
  {
    sync::MutexLock lock(&mutex_);
    if (closed_ || finishing_ || queue_.size() >= max_queued_) return false;
    absl::StatusOr<v1::Envelope> sealed =
        Gate::SealStreamReply(*request_, method_path_, payload, sequence_ + 1);
    if (!sealed.ok()) {
      OMD_LOG(ERROR, "%s: cannot seal a stream reply: %s", method_path_,
              sealed.status().ToString());
      return false;
    }
    ++sequence_;
    queue_.push_back(*std::move(sealed));
    if (writing_) return true;
    writing_ = true;
    next = &queue_.front();
    reactor = reactor_;
  }
  // The call cannot be done meanwhile: gRPC finishes it only after our Finish,
  // which waits for this write.
  reactor->StartWrite(next);
  return true;
}

void StreamWriter::Finish(absl::Status status) {
  grpc::ServerWriteReactor<v1::Envelope>* reactor = nullptr;
  {
    sync::MutexLock lock(&mutex_);
    if (finishing_) return;
    finishing_ = true;
    finish_status_ = rpc::ToGrpcStatus(status);
    if (!TakeFinishLocked()) return;
    reactor = reactor_;
  }
  reactor->Finish(rpc::ToGrpcStatus(status));
}

void StreamWriter::OnClosed(std::function<void()> callback) {
  {
    sync::MutexLock lock(&mutex_);
    if (!closed_) {
      on_closed_.push_back(std::move(callback));
      return;
    }
  }
  callback();
}

bool StreamWriter::closed() const {
  sync::MutexLock lock(&mutex_);
  return closed_;
}

size_t StreamWriter::queued() const {
  sync::MutexLock lock(&mutex_);
  return queue_.size();
}

bool StreamWriter::TakeFinishLocked() {
  if (!finishing_ || writing_ || finish_sent_ || reactor_ == nullptr) return false;
  finish_sent_ = true;
  return true;
}

std::vector<std::function<void()>> StreamWriter::CloseLocked() {
  closed_ = true;
  return std::exchange(on_closed_, {});
}

void StreamWriter::WriteDone(bool ok) {
  grpc::ServerWriteReactor<v1::Envelope>* reactor = nullptr;
  const v1::Envelope* next = nullptr;
  bool finish = false;
  grpc::Status status;
  std::vector<std::function<void()>> callbacks;
  {
    sync::MutexLock lock(&mutex_);
    writing_ = false;
    if (!queue_.empty()) queue_.pop_front();
    if (!ok) {
      // The call is broken (the caller went away): nothing more gets out.
      queue_.clear();
      if (!finishing_) {
        finishing_ = true;
        finish_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "the stream broke");
      }
      callbacks = CloseLocked();
    }
    reactor = reactor_;
    if (!queue_.empty()) {
      writing_ = true;
      next = &queue_.front();
    } else {
      finish = TakeFinishLocked();
      status = finish_status_;
    }
  }
  if (next != nullptr) {
    reactor->StartWrite(next);
  } else if (finish) {
    reactor->Finish(status);
  }
  for (auto& callback : callbacks) callback();
}

void StreamWriter::Cancelled() {
  grpc::ServerWriteReactor<v1::Envelope>* reactor = nullptr;
  bool finish = false;
  grpc::Status status;
  std::vector<std::function<void()>> callbacks;
  {
    sync::MutexLock lock(&mutex_);
    // Only the write in flight, if any, stays: gRPC holds it until OnWriteDone.
    queue_.erase(queue_.begin() + (writing_ && !queue_.empty() ? 1 : 0), queue_.end());
    if (!finishing_) {
      finishing_ = true;
      finish_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "the caller cancelled");
    }
    callbacks = CloseLocked();
    finish = TakeFinishLocked();
    status = finish_status_;
    reactor = reactor_;
  }
  if (finish) reactor->Finish(status);
  for (auto& callback : callbacks) callback();
}

void StreamWriter::Done() {
  std::vector<std::function<void()>> callbacks;
  {
    sync::MutexLock lock(&mutex_);
    reactor_ = nullptr;
    queue_.clear();
    callbacks = CloseLocked();
  }
  open_->Remove(this);
  for (auto& callback : callbacks) callback();
}

}  // namespace omd::server
