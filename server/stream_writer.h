// A server stream over gRPC's callback API: RawServerStream (server/server_stream.h)
// written through one grpc::ServerWriteReactor per call, with no thread of its own.
//
// One write is in flight at a time: Write seals the reply (Gate::SealStreamReply,
// numbered from 1) and queues it, and starts it if the stream is idle; each
// OnWriteDone starts the next. Finish waits for the queue to drain, so gRPC's
// Finish is never called while a write is in flight. The stream never calls
// into gRPC with its mutex held (gRPC may run reactions inline).
//
// Lifetimes: gRPC owns the reactor and deletes it in OnDone; producers own the
// StreamWriter (a shared_ptr), which only reaches the reactor while the call is
// live, and which holds the admitted request (whose view seals the replies).
//
//   OpenStreams open(&open_count);      // one per AgentService
//   StreamWriter::Started started =
//       StreamWriter::Start(admitted, path, /*max_queued=*/64, &open);
//   handler(caller, payload, started.stream);
//   return started.reactor;             // to gRPC
//   ...
//   open.FinishAll(absl::UnavailableError("the daemon is stopping"));
#ifndef OMD_SERVER_STREAM_WRITER_H_
#define OMD_SERVER_STREAM_WRITER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "proto/omd.pb.h"
#include "server/gate.h"
#include "server/server_stream.h"
#include "sync/mutex.h"

namespace omd::server {

class StreamWriter;

// The open streams of one service, so that a server's shutdown can end them.
class OpenStreams {
 public:
  // `open_count`, if not null, follows the number of open streams (shared by the
  // services of successive gRPC servers) and must outlive every stream.
  explicit OpenStreams(std::atomic<int64_t>* open_count = nullptr)
      : open_count_(open_count) {}

  // Finishes every open stream with `status`, and from now on every new one.
  void FinishAll(const absl::Status& status);
  size_t size() const;

 private:
  friend class StreamWriter;
  // False once FinishAll ran: the stream is to be finished with `*status`.
  bool Add(StreamWriter* stream, const std::shared_ptr<StreamWriter>& shared,
           absl::Status* status);
  void Remove(StreamWriter* stream);

  std::atomic<int64_t>* const open_count_;
  mutable sync::Mutex mutex_;
  bool finishing_ ABSL_GUARDED_BY(mutex_) = false;
  absl::Status finish_status_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<StreamWriter*, std::weak_ptr<StreamWriter>> streams_
      ABSL_GUARDED_BY(mutex_);
};

class StreamWriter final : public RawServerStream {
 public:
  struct Started {
    grpc::ServerWriteReactor<v1::Envelope>* reactor;  // for gRPC, which owns it
    std::shared_ptr<StreamWriter> stream;
    bool refused = false;  // after OpenStreams::FinishAll: finished already
  };

  // A stream answering `request` on `method_path`, at most `max_queued` replies
  // waiting. `open` must outlive the reactor (gRPC's server waits for its calls,
  // and the service that holds `open` outlives its server).
  static Started Start(std::shared_ptr<const AdmittedRequest> request,
                       std::string method_path, size_t max_queued, OpenStreams* open);

  bool Write(std::string payload) override;
  void Finish(absl::Status status) override;
  void OnClosed(std::function<void()> callback) override;
  bool closed() const override;
  size_t queued() const override;

  // The admitted request this stream answers (its caller, with the deadline).
  const AdmittedRequest& request() const { return *request_; }

 private:
  class Reactor;
  friend class Reactor;

  StreamWriter(std::shared_ptr<const AdmittedRequest> request, std::string method_path,
               size_t max_queued, OpenStreams* open);

  // Reactions, from gRPC.
  void WriteDone(bool ok);
  void Cancelled();
  void Done();

  // Whether Finish is due now (asked, no write in flight, not sent yet); if
  // so, marks it sent: the caller calls reactor->Finish once unlocked.
  bool TakeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Marks the stream over and hands back the callbacks to run, unlocked.
  std::vector<std::function<void()>> CloseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::shared_ptr<const AdmittedRequest> request_;
  const std::string method_path_;
  const size_t max_queued_;
  OpenStreams* const open_;

  mutable sync::Mutex mutex_;
  // Null once gRPC is done with the call.
  grpc::ServerWriteReactor<v1::Envelope>* reactor_ ABSL_GUARDED_BY(mutex_) = nullptr;
  // Sealed replies; while writing_, the front is the one in flight (a deque:
  // gRPC holds its address while the others are pushed behind it).
  std::deque<v1::Envelope> queue_ ABSL_GUARDED_BY(mutex_);
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool finishing_ ABSL_GUARDED_BY(mutex_) = false;    // Finish asked
  bool finish_sent_ ABSL_GUARDED_BY(mutex_) = false;  // reactor Finish called
  grpc::Status finish_status_ ABSL_GUARDED_BY(mutex_);
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
  uint64_t sequence_ ABSL_GUARDED_BY(mutex_) = 0;  // of the last reply queued
  std::vector<std::function<void()>> on_closed_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace omd::server

#endif  // OMD_SERVER_STREAM_WRITER_H_
