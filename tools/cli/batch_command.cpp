// `paligemma batch`: one JSON request per input line, one JSON result per output line, resumable.
//
// The output is the record of what is done: every result line is appended with one write() and fsync()ed
// before the next request starts, so an interrupted run loses at most the request in flight and never
// writes half a result that a rerun would keep. A rerun first drops a trailing partial line (a write cut off
// by a crash), then skips every id that already has a line.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "args.h"
#include "batch_request.h"
#include "commands.h"
#include "../common/objects_json.h"
#include "paligemma/engine.h"
#include "paligemma/system.h"
#include "paligemma/video.h"

namespace pg::cli {

using nlohmann::json;
using nlohmann::ordered_json;  // result lines keep "id" first
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// A request line is a few paths and a short prompt; a line far longer is a mistake (a data file given as
// the input, an image pasted inline) and is reported instead of parsed.
constexpr int64_t kDefaultMaxLineBytes = int64_t{1} << 20;

// Decodes the request's image files (or video frames) into `req.generate`; relative paths are taken from
// `base_dir` (the input file's folder). Throws RequestError.
void load_images(BatchRequest& req, const fs::path& base_dir) {
  const auto resolve = [&](const std::string& path) { return (base_dir / path).string(); };
  try {
    if (req.image_paths.empty()) {
      for (VideoFrame& f : sample_video_frames(resolve(req.video_path), req.frames))
        req.generate.images.push_back(std::move(f.image));
    } else {
      for (const std::string& path : req.image_paths) req.generate.images.push_back(decode_image_file(resolve(path)));
    }
  } catch (const Error& e) {
    throw RequestError{"input_error", e.what()};
  }
}

// Segmentation objects carry masks when the engine has a mask decoder, else seg_codes only.
ordered_json serve(const Engine& engine, const json& request, const fs::path& base_dir) {
  BatchRequest batch_request = parse_request(request);
  load_images(batch_request, base_dir);
  const GenerateRequest& req = batch_request.generate;
  GenerateResult r;
  try {
    r = engine.generate(req);
  } catch (const Error& e) {
    throw RequestError{"generation_error", e.what()};
  } catch (const std::bad_alloc&) {
    throw RequestError{"generation_error", "out of memory"};
  }
  return batch_result_json(r, req.beams > 1);
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

bool is_blank(const std::string& line) { return line.find_first_not_of(" \t\r") == std::string::npos; }

// Ids (as compact JSON text) that already have a result in `path`, after cutting off a partial last line.
std::set<std::string> finished_ids(const std::string& path) {
  std::set<std::string> ids;
  if (!fs::exists(path)) return ids;
  std::string text = read_regular_file(path, "output file");
  if (!text.empty() && text.back() != '\n') {
    const size_t keep = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
    if (::truncate(path.c_str(), off_t(keep)) != 0)
      throw Error("cannot cut the partial last line off " + path + ": " + std::strerror(errno));
    std::cerr << "batch: " << path << " ended in a partial line (an interrupted write); removed it\n";
    text.resize(keep);
  }
  const std::vector<std::string> lines = split_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (is_blank(lines[i])) continue;
    const json result = json::parse(lines[i], nullptr, false);
    if (!result.is_object() || !result.contains("id"))
      throw Error(path + " line " + std::to_string(i + 1) +
                  " is not a result line of paligemma batch; refusing to append to it (choose another --output)");
    ids.insert(result["id"].dump());
  }
  return ids;
}

// Every non-blank line of the input file, in order (batch_request.h: read_request_line).
std::vector<Pending> read_requests(const std::string& path, size_t max_line_bytes) {
  std::vector<Pending> out;
  std::set<std::string> seen;
  const std::vector<std::string> lines = split_lines(read_regular_file(path, "input file"));
  for (size_t i = 0; i < lines.size(); ++i)
    if (!is_blank(lines[i])) out.push_back(read_request_line(lines[i], i + 1, seen, max_line_bytes));
  return out;
}

// Appends whole lines to the output, each made durable before the next.
class ResultWriter {
 public:
  explicit ResultWriter(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("cannot open " + path + " for appending: " + std::strerror(errno));
  }
  ~ResultWriter() { ::close(fd_); }
  ResultWriter(const ResultWriter&) = delete;
  ResultWriter& operator=(const ResultWriter&) = delete;

  void append(const ordered_json& result) {
    const std::string line = result.dump(-1, ' ', false, ordered_json::error_handler_t::replace) + "\n";
    size_t done = 0;
    while (done < line.size()) {
      const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw Error("cannot write " + path_ + ": " + std::strerror(errno));
      done += size_t(n);
    }
    if (::fsync(fd_) != 0) throw Error("cannot flush " + path_ + " to disk: " + std::strerror(errno));
  }

 private:
  std::string path_;
  int fd_ = -1;
};

std::string clock_text(double seconds) {
  const long s = long(std::lround(seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

// Progress on stderr: a bar redrawn in place on a terminal, otherwise a plain line every 10 seconds.
class Progress {
 public:
  explicit Progress(size_t total) : total_(total), tty_(::isatty(STDERR_FILENO)), t0_(Clock::now()), last_(t0_) {}

  void update(size_t done, size_t errors) {
    const auto now = Clock::now();
    const bool finished = done == total_;
    if (!tty_ && !finished && now - last_ < std::chrono::seconds(10)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - t0_).count();
    const double rate = elapsed > 0 ? double(done) / elapsed : 0;
    std::ostringstream line;
    if (tty_) {
      const int width = 30, filled = int(width * done / std::max<size_t>(total_, 1));
      line << "\r[" << std::string(size_t(filled), '#') << std::string(size_t(width - filled), '.') << "] ";
    } else {
      line << "batch: ";
    }
    line << done << "/" << total_ << " (" << (100 * done / std::max<size_t>(total_, 1)) << "%)";
    char rate_text[32];
    std::snprintf(rate_text, sizeof rate_text, "%.2f", rate);
    line << " " << rate_text << " req/s";
    if (!finished && rate > 0) line << " ETA " << clock_text(double(total_ - done) / rate);
    if (finished) line << " in " << clock_text(elapsed);
    if (errors) line << ", " << errors << (errors == 1 ? " error" : " errors");
    line << (tty_ ? "\033[K" : "\n");
    if (tty_ && finished) line << "\n";
    std::cerr << line.str() << std::flush;
  }

 private:
  size_t total_;
  bool tty_;
  Clock::time_point t0_, last_;
};

}  // namespace

int run_batch(int argc, char** argv) {
  const Args args(argc, argv, 2,
                  {{"--model", true},
                   {"--vae", true},
                   {"--input", true},
                   {"--output", true},
                   {"--threads", true},
                   {"--no-sliding-window", false},
                   {"--no-final-softcap", false},
                   {"--f32-activations", false},
                   {"--no-mmap", false},
                   {"--max-line-bytes", true},
                   {"--image-cache-mb", true}},
                  kBatchUsage);
  if (!args.has("--input")) throw UsageError("batch needs --input REQUESTS.jsonl");
  if (!args.has("--output")) throw UsageError("batch needs --output RESULTS.jsonl");
  const std::string input = args.get("--input"), output = args.get("--output");
  std::error_code ec;
  if (fs::exists(output) && fs::equivalent(input, output, ec))
    throw UsageError("--input and --output are the same file");
  LoadOptions lo;
  lo.threads = int(args.get_int("--threads", 0, 1, 1024));
  lo.sliding_window = !args.has("--no-sliding-window");
  lo.final_softcap = !args.has("--no-final-softcap");
  lo.reference_rounding = !args.has("--f32-activations");
  lo.copy_weights = args.has("--no-mmap");
  lo.image_cache_bytes = size_t(args.get_int("--image-cache-mb", 256, 0, 1 << 20)) << 20;
  lo.mask_decoder_path = args.get("--vae");

  const std::vector<Pending> requests =
      read_requests(input, size_t(args.get_int("--max-line-bytes", kDefaultMaxLineBytes, 1, int64_t{1} << 40)));
  const std::set<std::string> done_ids = finished_ids(output);
  std::vector<const Pending*> todo;
  for (const Pending& p : requests)
    if (!done_ids.count(p.id.dump())) todo.push_back(&p);
  const size_t skipped = requests.size() - todo.size();
  if (skipped)
    std::cerr << "batch: " << skipped << " of " << requests.size() << " requests already in " << output << "\n";
  if (todo.empty()) return 0;

  const auto engine = Engine::load(model_dir_from(args), lo);
  for (const std::string& note : engine->load_notes()) std::cerr << "paligemma: note: " << note << "\n";
  const fs::path base_dir = fs::absolute(input).parent_path();
  ResultWriter writer(output);
  Progress progress(todo.size());
  size_t errors = 0;
  for (size_t i = 0; i < todo.size(); ++i) {
    const Pending& p = *todo[i];
    ordered_json result{{"id", p.id}};
    try {
      if (p.error) throw *p.error;
      result.update(serve(*engine, p.request, base_dir));
    } catch (const RequestError& e) {
      result["error"] = ordered_json{{"code", e.code}, {"message", e.message}};
      ++errors;
    }
    writer.append(result);
    progress.update(i + 1, errors);
  }
  return 0;
}

}  // namespace pg::cli
