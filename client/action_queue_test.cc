#include "client/action_queue.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace omd::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

absl::Status AcceptEveryAction(absl::Span<const std::string>) { return absl::OkStatus(); }

bool Exists(const std::string& path) {
  struct stat info;
  return lstat(path.c_str(), &info) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(file)),
                     std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << contents;
  ASSERT_TRUE(file.good()) << path;
}

// Names in a directory, hidden ones included, "." and ".." not.
std::vector<std::string> ListDirectory(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return names;
  while (struct dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

// A JSON list of strings; the test strings need no escaping beyond quotes.
std::string JsonList(const std::vector<std::string>& arguments) {
  std::vector<std::string> quoted;
  for (const std::string& argument : arguments) {
    std::string escaped;
    for (char c : argument) {
      if (c == '"' || c == '\\') escaped += '\\';
      escaped += c;
    }
    quoted.push_back(absl::StrCat("\"", escaped, "\""));
  }
  return absl::StrCat("[", absl::StrJoin(quoted, ", "), "]");
}

class ActionQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmpdir = getenv("TEST_TMPDIR");
    ASSERT_NE(tmpdir, nullptr);
    const ::testing::TestInfo* test =
        ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = absl::StrCat(tmpdir, "/", test->name(), "/root");
    actions_ = absl::StrCat(root_, "/var/actions");
    queue_ = absl::StrCat(actions_, "/queue");
    log_ = absl::StrCat(tmpdir, "/", test->name(), "/invocations");
    ASSERT_EQ(mkdir(absl::StrCat(tmpdir, "/", test->name()).c_str(), 0700), 0);
    ASSERT_EQ(mkdir(root_.c_str(), 0700), 0);
    ASSERT_EQ(mkdir(absl::StrCat(root_, "/var").c_str(), 0700), 0);
    ASSERT_EQ(mkdir(actions_.c_str(), 0700), 0);
    ASSERT_EQ(mkdir(queue_.c_str(), 0700), 0);
  }

  // A stand-in for om that appends one line per invocation to log_, each
  // argument in brackets, and then runs `tail` (a shell snippet) if given.
  std::vector<std::string> RecordingOm(const std::string& tail = "") const {
    return {"/bin/sh", "-c",
            absl::StrCat("printf '[%s]' \"$@\" >> '", log_, "'; echo >> '", log_,
                         "'; ", tail),
            "om"};
  }

  std::vector<std::string> Invocations() const {
    std::string contents = ReadFile(log_);
    if (contents.empty()) return {};
    if (contents.back() == '\n') contents.pop_back();
    return absl::StrSplit(contents, '\n');
  }

  DequeueOptions Options(std::vector<std::string> prefix) const {
    DequeueOptions options;
    options.root = root_;
    options.om_argv_prefix = std::move(prefix);
    options.check_action = AcceptEveryAction;
    options.action_timeout = absl::Seconds(30);
    return options;
  }

  void Queue(const std::string& name, const std::string& contents) {
    WriteFile(absl::StrCat(queue_, "/", name), contents);
  }

  std::string Dir(const std::string& which) const {
    return absl::StrCat(actions_, "/", which);
  }

  std::string root_, actions_, queue_, log_;
};

TEST_F(ActionQueueTest, RunsActionsInFileNameOrder) {
  Queue("b", JsonList({"second"}));
  Queue("c10", JsonList({"third"}));
  Queue("a", JsonList({"first"}));
  Queue("c2", JsonList({"fourth"}));

  absl::StatusOr<DequeueSummary> summary = DequeueActions(Options(RecordingOm()));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->done, 4);
  EXPECT_EQ(summary->failed, 0);
  EXPECT_THAT(summary->failed_names, IsEmpty());
  EXPECT_THAT(Invocations(),
              ElementsAre("[first]", "[second]", "[third]", "[fourth]"));
}

TEST_F(ActionQueueTest, PassesArgumentsVerbatimWithoutAShell) {
  std::string marker = absl::StrCat(root_, "/injected");
  std::vector<std::string> arguments = {
      "node",   "a b",
      "\"double quoted\"", "'single quoted'",
      "x; touch " + marker, "$(touch " + marker + ")",
      "`touch " + marker + "`", "*",
      "$HOME", "| cat",
      "",     "back\\slash"};
  Queue("tricky", JsonList(arguments));

  absl::StatusOr<DequeueSummary> summary =
      DequeueActions(Options({"/bin/echo", "--root", root_}));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->done, 1);
  std::string expected_stdout =
      absl::StrCat("--root ", root_, " ", absl::StrJoin(arguments, " "), "\n");
  EXPECT_THAT(ReadFile(Dir("done/tricky.out")),
              HasSubstr(absl::StrCat("--- stdout\n", expected_stdout)));

  // The same through a program that shows the argument boundaries.
  Queue("tricky2", JsonList(arguments));
  ASSERT_TRUE(DequeueActions(Options(RecordingOm())).ok());
  std::string bracketed;
  for (const std::string& argument : arguments) {
    absl::StrAppend(&bracketed, "[", argument, "]");
  }
  EXPECT_THAT(Invocations(), ElementsAre(bracketed));
  EXPECT_FALSE(Exists(marker)) << "an argument was run by a shell";
}

TEST_F(ActionQueueTest, SuccessfulActionGoesToDoneWithItsOutput) {
  Queue("greet", JsonList({"hello", "world"}));
  absl::StatusOr<DequeueSummary> summary = DequeueActions(
      Options({"/bin/sh", "-c", "echo \"$@\"; echo warning >&2", "om"}));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->done, 1);
  EXPECT_EQ(summary->failed, 0);

  EXPECT_THAT(ListDirectory(Dir("done")), ElementsAre("greet", "greet.out"));
  EXPECT_THAT(ListDirectory(queue_), IsEmpty());
  EXPECT_THAT(ListDirectory(Dir("running")), IsEmpty());
  EXPECT_THAT(ListDirectory(Dir("failed")), IsEmpty());
  EXPECT_EQ(ReadFile(Dir("done/greet")), JsonList({"hello", "world"}));
  EXPECT_EQ(ReadFile(Dir("done/greet.out")),
            "exit_code: 0\n--- stdout\nhello world\n--- stderr\nwarning\n");
}

TEST_F(ActionQueueTest, NonZeroExitGoesToFailedWithItsOutput) {
  Queue("breaks", JsonList({"x"}));
  absl::StatusOr<DequeueSummary> summary = DequeueActions(
      Options({"/bin/sh", "-c", "printf partial; echo oops >&2; exit 3", "om"}));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->done, 0);
  EXPECT_EQ(summary->failed, 1);
  EXPECT_THAT(summary->failed_names, ElementsAre("breaks"));
  EXPECT_THAT(ListDirectory(Dir("failed")), ElementsAre("breaks", "breaks.out"));
  EXPECT_THAT(ListDirectory(Dir("done")), IsEmpty());
  // Output without a final newline still leaves the next header on its own line.
  EXPECT_EQ(ReadFile(Dir("failed/breaks.out")),
            "exit_code: 3\n--- stdout\npartial\n--- stderr\noops\n");
}

TEST_F(ActionQueueTest, BinFalseFails) {
  Queue("f", JsonList({"anything"}));
  absl::StatusOr<DequeueSummary> summary = DequeueActions(Options({"/bin/false"}));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->failed, 1);
  EXPECT_THAT(ReadFile(Dir("failed/f.out")), StartsWith("exit_code: 1\n"));
}

TEST_F(ActionQueueTest, TimeoutGoesToFailed) {
  Queue("slow", JsonList({"30"}));
  DequeueOptions options = Options({"/bin/sleep"});
  options.action_timeout = absl::Milliseconds(200);
  absl::StatusOr<DequeueSummary> summary = DequeueActions(options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->failed, 1);
  std::string report = ReadFile(Dir("failed/slow.out"));
  EXPECT_THAT(report, HasSubstr("timed_out: after 200ms"));
  EXPECT_THAT(report, HasSubstr("term_signal: 15"));
}

TEST_F(ActionQueueTest, MissingOmProgramGoesToFailed) {
  Queue("a", JsonList({"x"}));
  absl::StatusOr<DequeueSummary> summary =
      DequeueActions(Options({"/nonexistent/om"}));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->failed, 1);
  EXPECT_THAT(ReadFile(Dir("failed/a.out")), StartsWith("error: NOT_FOUND"));
}

TEST_F(ActionQueueTest, InvalidFilesFailWithoutStoppingTheOthers) {
  struct InvalidFile {
    std::string name;
    std::string contents;
    std::string reason;  // expected in <name>.out
  };
  std::vector<std::string> too_many(kMaxActionArguments + 1, "a");
  std::vector<InvalidFile> invalid_files = {
      {"bad-json", "[\"unterminated", "not a JSON list"},
      {"empty-file", "", "not a JSON list"},
      {"object", "{\"a\": \"b\"}", "not a JSON list"},
      {"bare-string", "\"node\"", "not a JSON list"},
      {"null", "null", "not a JSON list"},
      {"list-value-object", "{\"values\": [\"node\"]}", "not a JSON list"},
      {"trailing-garbage", "[\"a\"] x", "not a JSON list"},
      {"numbers", "[1, 2]", "argument 0 is not a string"},
      {"mixed", "[\"a\", true]", "argument 1 is not a string"},
      {"nested", "[[\"a\"]]", "argument 0 is not a string"},
      {"null-element", "[\"a\", null]", "argument 1 is not a string"},
      {"empty-list", "[]", "the argument list is empty"},
      {"nul", "[\"a\", \"b\\u0000c\"]", "argument 1 contains a NUL"},
      {"too-big", JsonList({std::string(kMaxActionFileBytes, 'x')}),
       "over 65536 bytes"},
      {"too-many", JsonList(too_many), "257 arguments, more than 256"},
  };
  std::vector<std::string> invalid_names;
  for (const InvalidFile& file : invalid_files) {
    Queue(file.name, file.contents);
    invalid_names.push_back(file.name);
  }
  Queue("aa-good", JsonList({"before"}));
  Queue("zz-good", JsonList({"after"}));

  absl::StatusOr<DequeueSummary> summary = DequeueActions(Options(RecordingOm()));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->done, 2);
  EXPECT_EQ(summary->failed, static_cast<int>(invalid_files.size()));
  std::sort(invalid_names.begin(), invalid_names.end());
  EXPECT_EQ(summary->failed_names, invalid_names);  // in run (name) order
  EXPECT_THAT(Invocations(), ElementsAre("[before]", "[after]"));
  for (const InvalidFile& file : invalid_files) {
    SCOPED_TRACE(file.name);
    EXPECT_EQ(ReadFile(Dir("failed/" + file.name)), file.contents);
    std::string report = ReadFile(Dir("failed/" + file.name + ".out"));
    EXPECT_THAT(report, StartsWith("error: INVALID_ARGUMENT"));
    EXPECT_THAT(report, HasSubstr(file.reason));
  }
  EXPECT_THAT(ListDirectory(queue_), IsEmpty());
  EXPECT_THAT(ListDirectory(Dir("running")), IsEmpty());
}

TEST_F(ActionQueueTest, LimitsAreInclusive) {
  std::vector<std::string> most_arguments(kMaxActionArguments, "a");
  Queue("most-arguments", JsonList(most_arguments));
  // A list of one string padded so the file is exactly at the byte limit.
  std::string padded = JsonList({""});
  padded.insert(2, std::string(kMaxActionFileBytes - padded.size(), 'x'));
  ASSERT_EQ(padded.size(), kMaxActionFileBytes);
  Queue("most-bytes", padded);

  absl::StatusOr<DequeueSummary> summary = DequeueActions(Options({"/bin/true"}));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->done, 2);
  EXPECT_THAT(summary->failed_names, IsEmpty());
}

TEST_F(ActionQueueTest, SymlinkIsFailedAndItsTargetNotRead) {
  std::string secret = absl::StrCat(root_, "/secret");
  WriteFile(secret, "[\"looks-like-an-action\"]");
  ASSERT_EQ(symlink(secret.c_str(), absl::StrCat(queue_, "/link").c_str()), 0);

  absl::StatusOr<DequeueSummary> summary = DequeueActions(Options(RecordingOm()));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->failed, 1);
  EXPECT_THAT(Invocations(), IsEmpty());
  EXPECT_THAT(ReadFile(Dir("failed/link.out")), HasSubstr("not a regular file"));
  EXPECT_EQ(ReadFile(secret), "[\"looks-like-an-action\"]");
}

TEST_F(ActionQueueTest, FifoIsFailedWithoutBlocking) {
  ASSERT_EQ(mkfifo(absl::StrCat(queue_, "/pipe").c_str(), 0600), 0);
  absl::StatusOr<DequeueSummary> summary = DequeueActions(Options(RecordingOm()));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->failed, 1);
  EXPECT_THAT(ReadFile(Dir("failed/pipe.out")), HasSubstr("not a regular file"));
}

TEST_F(ActionQueueTest, IgnoresHiddenFilesAndSubdirectories) {
  Queue(".being-written", JsonList({"hidden"}));
  ASSERT_EQ(mkdir(absl::StrCat(queue_, "/subdirectory").c_str(), 0700), 0);
  Queue("visible", JsonList({"visible"}));

  absl::StatusOr<DequeueSummary> summary = DequeueActions(Options(RecordingOm()));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->done, 1);
  EXPECT_EQ(summary->failed, 0);
  EXPECT_THAT(Invocations(), ElementsAre("[visible]"));
  EXPECT_THAT(ListDirectory(queue_),
              UnorderedElementsAre(".being-written", "subdirectory"));
}

TEST_F(ActionQueueTest, SkipsAFileClaimedByAnotherDequeuer) {
  // While "a" runs, the fake om takes "b" out of the queue exactly as a
  // concurrent dequeuer's claim would.
  std::string elsewhere = absl::StrCat(root_, "/other-running");
  ASSERT_EQ(mkdir(elsewhere.c_str(), 0700), 0);
  Queue("a", JsonList({"first"}));
  Queue("b", JsonList({"second"}));
  Queue("c", JsonList({"third"}));

  absl::StatusOr<DequeueSummary> summary = DequeueActions(Options(RecordingOm(
      absl::StrCat("if [ \"$1\" = first ]; then mv '", queue_, "/b' '", elsewhere,
                   "/b'; fi"))));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->done, 2);
  EXPECT_EQ(summary->failed, 0);
  EXPECT_THAT(Invocations(), ElementsAre("[first]", "[third]"));
  EXPECT_THAT(ListDirectory(elsewhere), ElementsAre("b"));
  EXPECT_THAT(ListDirectory(Dir("done")), ElementsAre("a", "a.out", "c", "c.out"));
  EXPECT_THAT(ListDirectory(Dir("failed")), IsEmpty());
}

TEST_F(ActionQueueTest, CreatesMissingDirectories) {
  DequeueOptions options = Options(RecordingOm());
  options.root = absl::StrCat(root_, "/fresh/root");
  absl::StatusOr<DequeueSummary> summary = DequeueActions(options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->done, 0);
  EXPECT_EQ(summary->failed, 0);
  for (const char* which : {"queue", "running", "done", "failed"}) {
    EXPECT_TRUE(IsDirectory(absl::StrCat(options.root, "/var/actions/", which)))
        << which;
  }
}

TEST_F(ActionQueueTest, EmptyQueueAfterARunDoesNothing) {
  Queue("once", JsonList({"x"}));
  ASSERT_TRUE(DequeueActions(Options(RecordingOm())).ok());
  absl::StatusOr<DequeueSummary> again = DequeueActions(Options(RecordingOm()));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->done, 0);
  EXPECT_EQ(again->failed, 0);
  EXPECT_THAT(Invocations(), ElementsAre("[x]"));
}

TEST_F(ActionQueueTest, RootThatIsAFileIsFailedPrecondition) {
  std::string file = absl::StrCat(root_, "/plain-file");
  WriteFile(file, "not a directory");
  DequeueOptions options = Options(RecordingOm());
  options.root = file;
  absl::StatusOr<DequeueSummary> summary = DequeueActions(options);
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(summary.status().message(), HasSubstr("plain-file"));
}

TEST_F(ActionQueueTest, EmptyRootIsInvalidArgument) {
  DequeueOptions options = Options(RecordingOm());
  options.root.clear();
  EXPECT_EQ(DequeueActions(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ActionQueueTest, EmptyOmPrefixIsInvalidArgument) {
  Queue("untouched", JsonList({"x"}));
  EXPECT_EQ(DequeueActions(Options({})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ListDirectory(queue_), ElementsAre("untouched"));
}

TEST_F(ActionQueueTest, NoCheckIsInvalidArgument) {
  Queue("untouched", JsonList({"x"}));
  DequeueOptions options = Options(RecordingOm());
  options.check_action = nullptr;
  EXPECT_EQ(DequeueActions(options).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ListDirectory(queue_), ElementsAre("untouched"));
  EXPECT_THAT(Invocations(), IsEmpty());
}

// The check sees each action's arguments, before it runs; an action it refuses
// goes to failed/ with the reason in its .out, and om is never run for it.
TEST_F(ActionQueueTest, ActionRefusedByTheCheckGoesToFailedUnrun) {
  Queue("1-allowed", JsonList({"daemon", "blacklist", "status"}));
  Queue("2-refused", JsonList({"--flagfile=/etc/shadow", "daemon", "blacklist", "status"}));
  Queue("3-allowed", JsonList({"node", "dequeue", "actions"}));
  std::vector<std::vector<std::string>> checked;
  DequeueOptions options = Options(RecordingOm());
  options.check_action = [&checked](absl::Span<const std::string> arguments) {
    checked.emplace_back(arguments.begin(), arguments.end());
    if (arguments.front() == "--flagfile=/etc/shadow") {
      return absl::InvalidArgumentError("no flags: \"--flagfile=/etc/shadow\"");
    }
    return absl::OkStatus();
  };

  absl::StatusOr<DequeueSummary> summary = DequeueActions(options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->done, 2);
  EXPECT_EQ(summary->failed, 1);
  EXPECT_THAT(summary->failed_names, ElementsAre("2-refused"));
  EXPECT_THAT(checked,
              ElementsAre(ElementsAre("daemon", "blacklist", "status"),
                          ElementsAre("--flagfile=/etc/shadow", "daemon", "blacklist", "status"),
                          ElementsAre("node", "dequeue", "actions")));
  EXPECT_THAT(Invocations(),
              ElementsAre("[daemon][blacklist][status]", "[node][dequeue][actions]"));
  EXPECT_THAT(ListDirectory(Dir("failed")), ElementsAre("2-refused", "2-refused.out"));
  EXPECT_EQ(ReadFile(Dir("failed/2-refused")),
            JsonList({"--flagfile=/etc/shadow", "daemon", "blacklist", "status"}));
  EXPECT_EQ(ReadFile(Dir("failed/2-refused.out")),
            "error: INVALID_ARGUMENT: no flags: \"--flagfile=/etc/shadow\"\n");
  EXPECT_THAT(ListDirectory(Dir("done")),
              ElementsAre("1-allowed", "1-allowed.out", "3-allowed", "3-allowed.out"));
}

// Through om's own check: queued om global flags never reach om, whatever
// their spelling or place; a plain command does.
TEST_F(ActionQueueTest, QueuedGlobalFlagsNeverReachOm) {
  const std::vector<std::vector<std::string>> refused = {
      {"--flagfile=/etc/shadow", "daemon", "blacklist", "status"},
      {"daemon", "blacklist", "status", "--flagfile=/etc/shadow"},
      {"daemon", "blacklist", "status", "-flagfile=/etc/shadow"},
      {"daemon", "empty-packet", "--server=10.9.9.9:1214"},
      {"daemon", "empty-packet", "--server", "10.9.9.9:1214"},
      {"--root=/other/node", "node", "dequeue", "actions"},
      {"node", "dequeue", "actions", "--root", "/other/node"},
      {"daemon", "blacklist", "clear", "--fromenv=root"},
      {"daemon", "blacklist", "clear", "--", "--server=10.9.9.9:1214"},
  };
  std::vector<std::string> refused_names;
  for (size_t i = 0; i < refused.size(); ++i) {
    refused_names.push_back(absl::StrCat("refused-", i));
    Queue(refused_names.back(), JsonList(refused[i]));
  }
  Queue("zz-plain", JsonList({"daemon", "blacklist", "status"}));
  DequeueOptions options = Options(RecordingOm());
  options.check_action = [](absl::Span<const std::string> arguments) {
    return CheckQueuedAction(arguments);
  };

  absl::StatusOr<DequeueSummary> summary = DequeueActions(options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->done, 1);
  EXPECT_EQ(summary->failed_names, refused_names);
  EXPECT_THAT(Invocations(), ElementsAre("[daemon][blacklist][status]"));
  for (const std::string& name : refused_names) {
    SCOPED_TRACE(name);
    EXPECT_THAT(ReadFile(Dir("failed/" + name + ".out")),
                StartsWith("error: INVALID_ARGUMENT: queued actions may not use om's "
                           "global flags: \""));
  }
  EXPECT_THAT(ReadFile(Dir("failed/refused-0.out")),
              HasSubstr("global flags: \"--flagfile=/etc/shadow\""));
  EXPECT_THAT(ReadFile(Dir("failed/refused-3.out")),
              HasSubstr("global flags: \"--server=10.9.9.9:1214\""));
  EXPECT_THAT(ReadFile(Dir("failed/refused-8.out")), HasSubstr("global flags: \"--\""));
}

// A table with a command that has an option of its own, as `daemon stop
// --thread-id` will.
std::vector<Command> CommandsWithAnOption() {
  return {Command{{"daemon", "blacklist", "status"}, "", nullptr, {}},
          Command{{"daemon", "stop"}, "", nullptr, {"thread_id"}}};
}

TEST(CheckQueuedActionTest, AcceptsACommandWithItsOwnOptions) {
  const std::vector<std::vector<std::string>> accepted = {
      {"daemon", "blacklist", "status"},
      {"daemon", "stop"},
      {"daemon", "stop", "--thread-id=7"},
      {"daemon", "stop", "--thread-id", "7"},
      {"daemon", "stop", "--thread-id="},
      {"daemon", "stop", "plain", "words", "--thread-id=1", "--thread-id=2"},
      {"daemon", "stop", "--thread-id=--flagfile=x"},  // a value, not a flag
      {"daemon", "stop", "--thread_id=7"},             // om's other spelling of it
  };
  for (const std::vector<std::string>& action : accepted) {
    EXPECT_TRUE(CheckQueuedAction(CommandsWithAnOption(), action).ok())
        << absl::StrJoin(action, " ");
  }
}

TEST(CheckQueuedActionTest, ServiceCommandsFollowTheServiceActionRules) {
  EXPECT_TRUE(CheckQueuedAction({"web", "start"}).ok());
  EXPECT_TRUE(CheckQueuedAction({"web", "set", "monitor", "--local-expect=started"}).ok());
  for (const std::vector<std::string>& refused :
       std::vector<std::vector<std::string>>{{"web", "start", "--root=/other"},
                                             {"web", "start", "--flagfile=/etc/shadow"},
                                             {"web", "set", "monitor", "--server=x:1"},
                                             {"Web", "start"},
                                             {"../x", "start"}}) {
    EXPECT_EQ(CheckQueuedAction(refused).code(), absl::StatusCode::kInvalidArgument)
        << absl::StrJoin(refused, " ");
  }
}

TEST(CheckQueuedActionTest, RefusesEverythingThatCouldBeAGlobalFlag) {
  const std::vector<std::string> refused_options = {
      "--root=/other", "--root", "--server=10.9.9.9:1214", "--node=node2",
      "--output=json", "--timeout=1s", "--flagfile=/etc/shadow", "--fromenv=root",
      "--tryfromenv=server", "--undefok=root", "--help", "--helpfull", "--helpshort",
      "--help=main", "--helpmatch=x", "--version", "--only_check_args",
      "-flagfile=/etc/shadow", "-root=/other", "-thread-id=7", "--", "-", "---thread-id",
      "--nothread-id", "--noroot", "--thread-id-x", "--Thread-id",
      "--=7", "--thread-idx=7", "- -thread-id",
  };
  for (const std::string& option : refused_options) {
    SCOPED_TRACE(option);
    absl::Status status =
        CheckQueuedAction(CommandsWithAnOption(), {"daemon", "stop", option});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()),
                StartsWith(absl::StrCat("queued actions may not use om's global flags: \"",
                                        option, "\"")));
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("the options of om daemon stop: --thread-id"));
    // Also after other arguments, and for a command with no options at all.
    EXPECT_FALSE(CheckQueuedAction(CommandsWithAnOption(),
                                   {"daemon", "stop", "--thread-id=1", "x", option})
                     .ok());
    status = CheckQueuedAction(CommandsWithAnOption(),
                               {"daemon", "blacklist", "status", option});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("om daemon blacklist status has no options of its own"));
    // Before the command's words.
    status = CheckQueuedAction(CommandsWithAnOption(), {option, "daemon", "stop"});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()),
                StartsWith("queued actions may not use om's global flags: "));
  }
  // The command's own option, but before its words: not a command.
  EXPECT_FALSE(CheckQueuedAction(CommandsWithAnOption(), {"--thread-id=7", "daemon", "stop"})
                   .ok());
}

TEST(CheckQueuedActionTest, RefusesWhatIsNotACommand) {
  for (const std::vector<std::string>& action : std::vector<std::vector<std::string>>{
           {}, {"no-such-command"}, {"daemon"}, {"daemon", "blacklist"}, {"stop", "daemon"}}) {
    absl::Status status = CheckQueuedAction(CommandsWithAnOption(), action);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << absl::StrJoin(action, " ");
  }
  EXPECT_EQ(CheckQueuedAction(CommandsWithAnOption(), {"no-such-command"}).message(),
            "unknown command \"no-such-command\"");
}

TEST(CheckQueuedActionTest, QuotesTheRefusedArgumentSafely) {
  absl::Status status = CheckQueuedAction(
      CommandsWithAnOption(), {"daemon", "stop", "--x\"\nerror: forged line"});
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("global flags: \"--x\\\"\\nerror: forged line\""));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("\n")));
  status = CheckQueuedAction(CommandsWithAnOption(),
                             {"daemon", "stop", "--" + std::string(10000, 'x')});
  EXPECT_LT(status.message().size(), 300u);
}

// Today's commands: each one accepted as a queued action, with its own options,
// each an om flag (Abseil's), and none may ever declare one of om's global flags.
TEST(CheckQueuedActionTest, TheCommandTable) {
  const std::vector<std::string> global_flags = {
      "root",       "server",    "node",      "output",      "timeout",
      "flagfile",   "fromenv",   "tryfromenv", "undefok",    "help",
      "helpfull",   "helpshort", "helppackage", "helpmatch", "version",
      "only_check_args"};
  ASSERT_THAT(Commands(), Not(IsEmpty()));
  for (const Command& command : Commands()) {
    const std::string words = absl::StrJoin(command.words, " ");
    SCOPED_TRACE(words);
    EXPECT_TRUE(CheckQueuedAction(command.words).ok());
    for (const std::string& option : command.options) {
      EXPECT_THAT(global_flags, Not(::testing::Contains(option)));
      EXPECT_EQ(option, CanonicalOptionName(option)) << "options are listed with '_'";
      EXPECT_NE(absl::FindCommandLineFlag(option), nullptr) << option;
      std::vector<std::string> with_option = command.words;
      with_option.push_back("--" + option + "=x");
      EXPECT_TRUE(CheckQueuedAction(with_option).ok()) << option;
    }
    std::vector<std::string> with_flag = command.words;
    with_flag.push_back("--server=10.9.9.9:1214");
    EXPECT_EQ(CheckQueuedAction(with_flag).code(), absl::StatusCode::kInvalidArgument);
  }
}

// Cancelled (om got SIGTERM): the running action is terminated and recorded as
// failed; the ones not started stay queued for the next dequeue.
TEST_F(ActionQueueTest, CancellationStopsTheRunAndKeepsTheRestQueued) {
  Queue("1-slow", JsonList({"slow"}));
  Queue("2-next", JsonList({"next"}));
  process::Cancellation cancellation;
  DequeueOptions options = Options({"/bin/sh", "-c", "sleep 30", "om"});
  options.cancellation = &cancellation;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(300));
    cancellation.Cancel();
  });
  absl::StatusOr<DequeueSummary> summary = DequeueActions(options);
  canceller.join();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->done, 0);
  EXPECT_EQ(summary->failed, 1);
  EXPECT_THAT(ReadFile(absl::StrCat(actions_, "/failed/1-slow.out")),
              HasSubstr("cancelled: the dequeue was stopped"));
  struct stat info;
  EXPECT_EQ(stat(absl::StrCat(queue_, "/2-next").c_str(), &info), 0);
}

}  // namespace
}  // namespace omd::client
