// PaliGemma's task prefixes (docs/paligemma-spec.md §8.1): the prompt text for a named task, so that
// callers need not remember the exact syntax ("caption en", "detect cat ; dog", ...).
#pragma once
#include <string>

namespace pg {

struct TaskPromptRequest {
  std::string task;      // caption | describe | ocr | answer | question | detect | segment
  std::string language;  // caption, describe, answer, question; empty means "en"
  std::string objects;   // detect, segment: "cat ; dog" (any spacing around ';')
  // answer: the question to answer. question: the answer to write a question for (the task is
  // "question {lang} {answer}", question generation). Other tasks take no free text.
  std::string text;
};

// The prefix, e.g. "caption en", "answer en what is this?", "detect cat ; dog"; the engine adds the "\n".
// Throws pg::Error (one line, naming the flag-like field) for an unknown task, a missing or unneeded
// argument, a language that is not one word, a newline in the free text (it would end the prefix early),
// and the object-list errors of normalize_object_list.
std::string build_task_prompt(const TaskPromptRequest& request);

// "cat;dog ;  big \t tree " -> "cat ; dog ; big tree": names trimmed, runs of white space inside a name made
// one space, names joined by " ; ". Throws pg::Error for an empty list, an empty name ("cat ; ; dog", a
// trailing ";"), or a name holding "<" or ">" (it would read as a special token).
std::string normalize_object_list(const std::string& objects);

}  // namespace pg
