#include "paligemma/tasks.h"

#include <array>

#include "paligemma/error.h"

namespace pg {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string collapse_spaces(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (is_space(c)) {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Language codes are one word (en, zh, pt-BR, quz); anything else would shift the task syntax.
std::string checked_language(const std::string& task, const std::string& language) {
  const std::string lang = language.empty() ? "en" : trim(language);
  bool ok = !lang.empty();
  for (char c : lang) {
    const bool word =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    ok = ok && word;
  }
  if (!ok)
    throw Error("task \"" + task + "\": the language must be one code such as en, de or zh (--lang), got \"" +
                language + "\"");
  return lang;
}

std::string checked_text(const std::string& task, const std::string& what, const std::string& text) {
  const std::string t = trim(text);
  if (t.empty()) throw Error("task \"" + task + "\" needs " + what + " (--question TEXT)");
  if (t.find('\n') != std::string::npos || t.find('\r') != std::string::npos)
    throw Error("task \"" + task + "\": " + what + " must be one line (a newline ends the prompt early)");
  return t;
}

}  // namespace

std::string normalize_object_list(const std::string& objects) {
  if (trim(objects).empty()) throw Error("the object list is empty; name what to find, e.g. \"cat ; dog\" (--objects)");
  std::string out;
  size_t start = 0;
  for (;;) {
    const size_t end = objects.find(';', start);
    const std::string name = collapse_spaces(objects.substr(start, end == std::string::npos ? end : end - start));
    if (name.empty())
      throw Error("the object list \"" + objects +
                  "\" has an empty name; separate names with \";\" as in "
                  "\"cat ; dog\" (--objects)");
    if (name.find_first_of("<>") != std::string::npos)
      throw Error("object name \"" + name + "\" contains \"<\" or \">\"; use plain words (--objects)");
    out += (out.empty() ? "" : " ; ") + name;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

std::string build_task_prompt(const TaskPromptRequest& r) {
  const std::string& task = r.task;
  static const std::array<std::string, 7> known = {"caption",  "describe", "ocr",    "answer",
                                                   "question", "detect",   "segment"};
  bool is_known = false;
  for (const auto& k : known) is_known = is_known || k == task;
  if (!is_known)
    throw Error("unknown task \"" + task + "\"; choose caption, describe, ocr, answer, question, detect or segment");

  const bool takes_language = task == "caption" || task == "describe" || task == "answer" || task == "question";
  const bool takes_text = task == "answer" || task == "question";
  const bool takes_objects = task == "detect" || task == "segment";
  if (!takes_language && !r.language.empty())
    throw Error("task \"" + task + "\" takes no language (--lang); its prompt has none");
  if (!takes_text && !r.text.empty())
    throw Error("task \"" + task + "\" takes no free text (--question); only answer and question do");
  if (!takes_objects && !r.objects.empty())
    throw Error("task \"" + task + "\" takes no object names (--objects); only detect and segment do");

  if (task == "ocr") return "ocr";
  if (takes_objects) {
    if (trim(r.objects).empty())
      throw Error("task \"" + task + "\" needs object names, e.g. \"cat ; dog\" (--objects)");
    return task + " " + normalize_object_list(r.objects);
  }
  const std::string lang = checked_language(task, r.language);
  if (task == "answer") return "answer " + lang + " " + checked_text(task, "a question", r.text);
  if (task == "question") return "question " + lang + " " + checked_text(task, "the answer to ask about", r.text);
  return task + " " + lang;
}

}  // namespace pg
