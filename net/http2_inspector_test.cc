#include "net/http2_inspector.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace omd::net {
namespace {

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr uint8_t kData = 0, kHeaders = 1, kPriority = 2, kRstStream = 3, kSettings = 4,
                  kPushPromise = 5, kPing = 6, kWindowUpdate = 8, kContinuation = 9;
constexpr uint8_t kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4;

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

// A frame: its 9-byte header and `length` bytes of payload.
std::string Frame(uint8_t type, uint8_t flags, uint32_t stream, size_t length) {
  std::string frame;
  frame.push_back(static_cast<char>(length >> 16));
  frame.push_back(static_cast<char>(length >> 8));
  frame.push_back(static_cast<char>(length));
  frame.push_back(static_cast<char>(type));
  frame.push_back(static_cast<char>(flags));
  frame.push_back(static_cast<char>(stream >> 24));
  frame.push_back(static_cast<char>(stream >> 16));
  frame.push_back(static_cast<char>(stream >> 8));
  frame.push_back(static_cast<char>(stream));
  frame.append(length, '\0');
  return frame;
}

std::string Opening() { return absl::StrCat(kPreface, Frame(kSettings, 0, 0, 6)); }

// A whole unary request on `stream`: headers, then the message with END_STREAM.
std::string Request(uint32_t stream, size_t message_bytes = 100) {
  return absl::StrCat(Frame(kHeaders, kEndHeaders, stream, 60),
                      Frame(kData, kEndStream, stream, message_bytes));
}

class Http2InspectorTest : public ::testing::Test {
 protected:
  Http2InspectorTest() : inspector_(&limits_, kStart) {}

  absl::Status Client(const std::string& bytes, absl::Duration after = absl::ZeroDuration()) {
    return inspector_.FromClient(bytes, kStart + after);
  }

  Http2Limits limits_;
  Http2Inspector inspector_;
};

TEST_F(Http2InspectorTest, AnOrdinaryConversationPasses) {
  ASSERT_TRUE(Client(Opening()).ok());
  for (uint32_t stream = 1; stream < 200; stream += 2) {
    ASSERT_TRUE(Client(Request(stream)).ok()) << stream;
    ASSERT_TRUE(inspector_
                    .FromServer(absl::StrCat(Frame(kHeaders, kEndHeaders, stream, 20),
                                             Frame(kData, 0, stream, 30),
                                             Frame(kHeaders, kEndHeaders | kEndStream, stream, 10)),
                                kStart)
                    .ok());
  }
  EXPECT_EQ(inspector_.streams_opened(), 100u);
  EXPECT_EQ(inspector_.incomplete_requests(), 0u);
  EXPECT_TRUE(inspector_.CheckDeadlines(kStart + absl::Hours(1)).ok());
}

// The parser is incremental: one byte at a time reaches the same verdicts.
TEST_F(Http2InspectorTest, BytesMayArriveOneAtATime) {
  const std::string conversation =
      absl::StrCat(Opening(), Request(1), Frame(kHeaders, kEndHeaders, 3, 40),
                   Frame(kData, 0, 3, 1000));
  for (char byte : conversation) ASSERT_TRUE(Client(std::string(1, byte)).ok());
  EXPECT_EQ(inspector_.streams_opened(), 2u);
  EXPECT_EQ(inspector_.incomplete_requests(), 1u);
  EXPECT_EQ(inspector_.incomplete_request_bytes(), 1000u);
}

TEST_F(Http2InspectorTest, WhatIsNotHttp2IsRefused) {
  EXPECT_EQ(Client("GET / HTTP/1.1\r\n").code(), absl::StatusCode::kInvalidArgument);
  Http2Inspector second(&limits_, kStart);
  EXPECT_EQ(second.FromClient(absl::StrCat(kPreface, Frame(kPing, 0, 0, 8)), kStart).message(),
            "HTTP/2 protocol error: the first frame is not SETTINGS");
  Http2Inspector third(&limits_, kStart);
  EXPECT_FALSE(third.FromClient(absl::StrCat(Opening(), Frame(kPushPromise, 0, 1, 4)), kStart)
                   .ok());
}

TEST_F(Http2InspectorTest, APrefaceMustComeInTime) {
  ASSERT_TRUE(Client(std::string(kPreface).substr(0, 10)).ok());
  EXPECT_TRUE(inspector_.CheckDeadlines(kStart + absl::Seconds(4)).ok());
  absl::Status late = inspector_.CheckDeadlines(kStart + absl::Seconds(6));
  EXPECT_EQ(late.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(late.message(), "no HTTP/2 preface within 5s");
}

TEST_F(Http2InspectorTest, FramesOverTheMaximumSizeAreRefused) {
  ASSERT_TRUE(Client(Opening()).ok());
  EXPECT_TRUE(Client(Frame(kData, 0, 1, 16384)).ok());
  // Refused on its header alone: the payload never needs to arrive.
  EXPECT_FALSE(Client(Frame(kData, 0, 1, 16385).substr(0, 9)).ok());
}

// CVE-2023-33953: a header block is refused as soon as a frame header announces
// more than the limit, however it is split.
TEST_F(Http2InspectorTest, HeaderBlocksAreCappedAcrossContinuations) {
  ASSERT_TRUE(Client(Opening()).ok());
  ASSERT_TRUE(Client(absl::StrCat(Frame(kHeaders, 0, 1, 8000),
                                  Frame(kContinuation, kEndHeaders, 1, 8384)))
                  .ok());  // 16384: at the limit
  ASSERT_TRUE(Client(Frame(kHeaders, 0, 3, 10000)).ok());
  ASSERT_TRUE(Client(Frame(kContinuation, 0, 3, 6000)).ok());
  absl::Status over = Client(Frame(kContinuation, 0, 3, 1000).substr(0, 9));
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(over.message(), "a header block over 16384 bytes");
}

// The per-frame bypass of CVE-2023-33953: endless small CONTINUATION frames.
TEST_F(Http2InspectorTest, EndlessContinuationsAreRefused) {
  ASSERT_TRUE(Client(Opening()).ok());
  ASSERT_TRUE(Client(Frame(kHeaders, 0, 1, 100)).ok());
  absl::Status verdict;
  int frames = 0;
  while (verdict.ok() && frames < 1000) {
    verdict = Client(Frame(kContinuation, 0, 1, 100));
    ++frames;
  }
  EXPECT_FALSE(verdict.ok());
  EXPECT_LE(frames * 100 + 100, 16384 + 100);
}

TEST_F(Http2InspectorTest, AHeaderBlockCannotBeInterrupted) {
  ASSERT_TRUE(Client(Opening()).ok());
  ASSERT_TRUE(Client(Frame(kHeaders, 0, 1, 100)).ok());
  EXPECT_EQ(Client(Frame(kData, 0, 1, 10)).message(),
            "HTTP/2 protocol error: a header block interrupted by another frame");
}

// CVE-2023-44487: HEADERS then RST_STREAM, as fast as possible.
TEST_F(Http2InspectorTest, RapidResetIsRefusedPastTheBurst) {
  ASSERT_TRUE(Client(Opening()).ok());
  uint32_t stream = 1;
  for (int i = 0; i < 200; ++i, stream += 2) {
    ASSERT_TRUE(Client(absl::StrCat(Frame(kHeaders, kEndHeaders, stream, 40),
                                    Frame(kRstStream, 0, stream, 4)))
                    .ok())
        << i;
  }
  absl::Status verdict = Client(absl::StrCat(Frame(kHeaders, kEndHeaders, stream, 40),
                                             Frame(kRstStream, 0, stream, 4)));
  EXPECT_EQ(verdict.message(), "too many stream resets (rapid reset)");
  EXPECT_EQ(inspector_.resets(), 201u);
}

TEST_F(Http2InspectorTest, ResetsAtTheSustainedRateAreFine) {
  ASSERT_TRUE(Client(Opening()).ok());
  uint32_t stream = 1;
  // 50 per second for a minute: the refill keeps up.
  for (int i = 0; i < 3000; ++i, stream += 2) {
    ASSERT_TRUE(Client(absl::StrCat(Frame(kHeaders, kEndHeaders, stream, 40),
                                    Frame(kRstStream, 0, stream, 4)),
                       absl::Milliseconds(20) * i)
                    .ok())
        << i;
  }
}

// Resets the client makes the server send ("MadeYouReset") count too.
TEST_F(Http2InspectorTest, ServerResetsCount) {
  ASSERT_TRUE(Client(Opening()).ok());
  absl::Status verdict;
  for (uint32_t stream = 1; verdict.ok() && stream < 1000; stream += 2) {
    ASSERT_TRUE(Client(absl::StrCat(Frame(kHeaders, kEndHeaders, stream, 40),
                                    Frame(kWindowUpdate, 0, stream, 4)))
                    .ok());
    verdict = inspector_.FromServer(Frame(kRstStream, 0, stream, 4), kStart);
  }
  EXPECT_EQ(verdict.message(), "too many stream resets (rapid reset)");
}

// Requests that announce more than they send hold gRPC's buffers: capped in
// number, in bytes, and in time.
TEST_F(Http2InspectorTest, IncompleteRequestsAreCapped) {
  limits_.max_incomplete_requests = 3;
  limits_.max_incomplete_request_bytes = 100'000;
  ASSERT_TRUE(Client(Opening()).ok());
  for (uint32_t stream : {1, 3, 5}) {
    ASSERT_TRUE(Client(absl::StrCat(Frame(kHeaders, kEndHeaders, stream, 40),
                                    Frame(kData, 0, stream, 16000)))
                    .ok());
  }
  EXPECT_EQ(inspector_.incomplete_requests(), 3u);
  EXPECT_EQ(Client(Frame(kHeaders, kEndHeaders, 7, 40)).message(), "over 3 incomplete requests");

  Http2Inspector bytes(&limits_, kStart);
  ASSERT_TRUE(bytes.FromClient(Opening(), kStart).ok());
  ASSERT_TRUE(bytes.FromClient(Frame(kHeaders, kEndHeaders, 1, 40), kStart).ok());
  absl::Status verdict;
  int frames = 0;
  while (verdict.ok()) {
    verdict = bytes.FromClient(Frame(kData, 0, 1, 16000), kStart);
    ++frames;
  }
  EXPECT_EQ(frames, 7);  // 7 * 16000 > 100000
  EXPECT_EQ(verdict.message(), "incomplete requests holding over 100000 bytes");
}

TEST_F(Http2InspectorTest, AStalledRequestTimesOut) {
  ASSERT_TRUE(Client(Opening()).ok());
  ASSERT_TRUE(Client(absl::StrCat(Frame(kHeaders, kEndHeaders, 1, 40), Frame(kData, 0, 1, 64000 % 16384)))
                  .ok());
  ASSERT_TRUE(Client(Request(3), absl::Seconds(20)).ok());  // others complete meanwhile
  EXPECT_TRUE(inspector_.CheckDeadlines(kStart + absl::Seconds(29)).ok());
  EXPECT_EQ(inspector_.CheckDeadlines(kStart + absl::Seconds(31)).message(),
            "a request not received whole within 30s");
}

TEST_F(Http2InspectorTest, ARequestEndsWithEndStreamAResetOrTheServersAnswer) {
  ASSERT_TRUE(Client(Opening()).ok());
  ASSERT_TRUE(Client(absl::StrCat(Frame(kHeaders, kEndHeaders, 1, 40), Frame(kData, 0, 1, 500),
                                  Frame(kHeaders, kEndHeaders, 3, 40), Frame(kData, 0, 3, 500),
                                  Frame(kHeaders, kEndHeaders, 5, 40), Frame(kData, 0, 5, 500)))
                  .ok());
  EXPECT_EQ(inspector_.incomplete_request_bytes(), 1500u);
  ASSERT_TRUE(Client(Frame(kData, kEndStream, 1, 0)).ok());
  ASSERT_TRUE(Client(Frame(kRstStream, 0, 3, 4)).ok());
  ASSERT_TRUE(
      inspector_.FromServer(Frame(kHeaders, kEndHeaders | kEndStream, 5, 10), kStart).ok());
  EXPECT_EQ(inspector_.incomplete_requests(), 0u);
  EXPECT_EQ(inspector_.incomplete_request_bytes(), 0u);
  EXPECT_TRUE(inspector_.CheckDeadlines(kStart + absl::Hours(1)).ok());
}

TEST_F(Http2InspectorTest, ControlFloodsAreRefusedButAcknowledgementsAreFree) {
  ASSERT_TRUE(Client(Opening()).ok());
  for (int i = 0; i < 5000; ++i) {
    ASSERT_TRUE(Client(absl::StrCat(Frame(kPing, kAck, 0, 8), Frame(kSettings, kAck, 0, 0))).ok());
  }
  absl::Status verdict;
  int frames = 0;
  while (verdict.ok() && frames < 5000) {
    verdict = Client(Frame(frames % 2 ? kPing : kPriority, 0, frames % 2 ? 0 : 1, frames % 2 ? 8 : 5));
    ++frames;
  }
  EXPECT_EQ(verdict.message(), "too many control frames");
  EXPECT_EQ(frames, 1000);  // the default burst is 1000, the first SETTINGS took one
}

TEST_F(Http2InspectorTest, EmptyDataFramesCountAsControlFrames) {
  limits_.control_frames = {10, 1};
  ASSERT_TRUE(Client(absl::StrCat(Opening(), Frame(kHeaders, kEndHeaders, 1, 40))).ok());
  absl::Status verdict;
  int frames = 0;
  while (verdict.ok() && frames < 100) {
    verdict = Client(Frame(kData, 0, 1, 0));
    ++frames;
  }
  EXPECT_EQ(frames, 10);  // the SETTINGS frame took one token
}

TEST(TokenBucketTest, RefillsAtTheRateUpToTheBurst) {
  const RateLimit limit{3, 2};
  TokenBucket bucket;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(bucket.Take(limit, kStart)) << i;
  EXPECT_FALSE(bucket.Take(limit, kStart));
  EXPECT_TRUE(bucket.Take(limit, kStart + absl::Milliseconds(500)));
  EXPECT_FALSE(bucket.Take(limit, kStart + absl::Milliseconds(500)));
  // A long pause refills to the burst, not beyond.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(bucket.Take(limit, kStart + absl::Hours(1))) << i;
  EXPECT_FALSE(bucket.Take(limit, kStart + absl::Hours(1)));
  TokenBucket unlimited;
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(unlimited.Take(RateLimit(), kStart));
}

}  // namespace
}  // namespace omd::net
