// The writing end of a server stream, as a handler sees it: typed replies
// queued in order, a bounded queue, an end, and word of the stream's end.
//
//   registry.AddServerStream<v1::ServiceLogsRequest, v1::ServiceLogsReply>(
//       "ServiceLogs", [&](const Caller& caller, const v1::ServiceLogsRequest& request,
//                          std::shared_ptr<ServerStream<v1::ServiceLogsReply>> stream) {
//         Subscription* subscription = feed.Subscribe([stream](const auto& reply) {
//           if (!stream->Write(reply)) ...  // full (a slow reader) or over
//         });
//         stream->OnClosed([&feed, subscription] { feed.Unsubscribe(subscription); });
//       });
//
// Thread-safe: any thread may use a stream, and keep it as long as it likes;
// once the call is over, Write returns false. The implementation over gRPC is
// server/stream_writer.h.
#ifndef OMD_SERVER_SERVER_STREAM_H_
#define OMD_SERVER_SERVER_STREAM_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"

namespace omd::server {

// A stream of serialized replies.
class RawServerStream {
 public:
  virtual ~RawServerStream() = default;

  // Queues `payload`, sealed as the stream's next reply (numbered 1, 2, 3... in
  // the order of the calls), to be sent after those before it. False, and the
  // payload dropped, when the queue is full or the stream is over (Finish
  // called, or closed). Never blocks.
  virtual bool Write(std::string payload) = 0;
  // Ends the stream with `status` once the queued replies are sent. Only the
  // first call counts.
  virtual void Finish(absl::Status status) = 0;
  // `callback` runs once, when the stream is over for whatever reason (the
  // caller cancelled or its deadline passed: at once; Finish: once the status is
  // sent; the server stopping). At once, on this thread, if it is over already.
  virtual void OnClosed(std::function<void()> callback) = 0;
  virtual bool closed() const = 0;
  // Replies waiting to be sent, the one being sent included.
  virtual size_t queued() const = 0;
};

template <typename Reply>
class ServerStream {
 public:
  explicit ServerStream(std::shared_ptr<RawServerStream> raw) : raw_(std::move(raw)) {}

  bool Write(const Reply& reply) { return raw_->Write(reply.SerializeAsString()); }
  void Finish(absl::Status status) { raw_->Finish(std::move(status)); }
  void OnClosed(std::function<void()> callback) { raw_->OnClosed(std::move(callback)); }
  bool closed() const { return raw_->closed(); }
  size_t queued() const { return raw_->queued(); }

 private:
  const std::shared_ptr<RawServerStream> raw_;
};

// A gRPC service whose calls may never end by themselves (a followed stream):
// the listener asks it to end them before it shuts a gRPC server down
// (server/listener.h), so that the shutdown does not wait for them.
class StreamingService {
 public:
  virtual ~StreamingService() = default;
  // Ends every open stream with `status`, and every stream opened from now on.
  virtual void FinishStreams(const absl::Status& status) = 0;
};

}  // namespace omd::server

#endif  // OMD_SERVER_SERVER_STREAM_H_
