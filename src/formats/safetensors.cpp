#include "formats/safetensors.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/file.h"
#include "paligemma/error.h"

namespace pg {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

DType parse_dtype(const std::string& s, const std::string& name, const std::string& path) {
  if (s == "F32") return DType::F32;
  if (s == "BF16") return DType::BF16;
  if (s == "F16") return DType::F16;
  throw Error("tensor " + name + " in " + path + " has dtype " + s +
              "; supported are F32, BF16 and F16 (convert the checkpoint with transformers first)");
}

}  // namespace

void SafetensorsCollection::add_file(const std::string& path, FileResidency residency) {
  auto file = std::make_unique<MappedFile>(path, residency);
  const uint8_t* base = file->data();
  const size_t size = file->size();
  if (size < 8) throw Error(path + " is not a safetensors file: only " + std::to_string(size) + " bytes");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];
  if (header_len == 0 || header_len > size - 8)
    throw Error(path + " is truncated or not a safetensors file: header length " + std::to_string(header_len) +
                " does not fit in " + std::to_string(size) + " bytes");
  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(base + 8), reinterpret_cast<const char*>(base + 8 + header_len));
  } catch (const json::exception& e) {
    throw Error(path + " has a corrupt safetensors header: " + e.what());
  }
  if (!header.is_object()) throw Error(path + " has a corrupt safetensors header: not a JSON object");
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = size - data_start;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string& name = it.key();
    const json& e = it.value();
    try {
      TensorView t;
      t.name = name;
      t.file = path;
      t.dtype = parse_dtype(e.at("dtype").get<std::string>(), name, path);
      // json's get<int64_t>() of a float is a cast, undefined for 1e300: whole numbers only.
      for (const auto& d : e.at("shape")) {
        if (!d.is_number_integer()) throw Error("has a dimension that is not a whole number: " + d.dump());
        const int64_t v = d.get<int64_t>();
        if (v < 0) throw Error("negative dimension");
        t.shape.push_back(v);
      }
      const auto& off = e.at("data_offsets");
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        throw Error("data_offsets must hold two non-negative whole numbers");
      const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
      const int64_t bytes = checked_byte_count(t.shape, int64_t(dtype_size(t.dtype)));
      if (bytes < 0) throw Error("has shape " + shape_to_string(t.shape) + ", whose size overflows");
      const uint64_t expected = uint64_t(bytes);
      if (end < begin || end - begin != expected)
        throw Error("holds " + std::to_string(end - begin) + " bytes but shape " + shape_to_string(t.shape) +
                    " of " + dtype_name(t.dtype) + " needs " + std::to_string(expected));
      if (end > data_size)
        throw Error("ends at byte " + std::to_string(data_start + end) + " but the file has only " +
                    std::to_string(size) + " bytes (truncated download?)");
      t.data = base + data_start + begin;
      if (tensors_.count(name))
        throw Error("is defined twice (also in " + tensors_.at(name).file + ")");
      tensors_.emplace(name, std::move(t));
    } catch (const json::exception& ex) {
      throw Error(path + ": tensor " + name + " has a malformed header entry: " + ex.what());
    } catch (const Error& ex) {
      throw Error(path + ": tensor " + name + " " + ex.what());
    }
  }
  files_.push_back(std::move(file));
}

std::string SafetensorsCollection::prefault() const {
  std::vector<const MappedFile*> files;
  for (const auto& f : files_) files.push_back(f.get());
  return prefault_mapped_files(files);
}

SafetensorsCollection SafetensorsCollection::open_files(const std::vector<std::string>& paths,
                                                        FileResidency residency) {
  SafetensorsCollection c;
  for (const auto& p : paths) c.add_file(p, residency);
  return c;
}

SafetensorsCollection SafetensorsCollection::open_directory(const std::string& dir, FileResidency residency) {
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(index_path)) {
    const std::string index_text = read_regular_file(index_path.string(), "shard index");
    json index;
    try {
      index = json::parse(index_text);
    } catch (const json::exception& e) {
      throw Error(index_path.string() + " is not valid JSON: " + e.what());
    }
    if (!index.contains("weight_map") || !index["weight_map"].is_object())
      throw Error(index_path.string() + " has no \"weight_map\" object");
    std::set<std::string> shard_names;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      if (!it.value().is_string()) throw Error(index_path.string() + ": weight_map entry " + it.key() + " is not a file name");
      const std::string shard = it.value().get<std::string>();
      if (shard.find('/') != std::string::npos || shard == ".." )
        throw Error(index_path.string() + ": shard name " + shard + " must be a plain file name");
      shard_names.insert(shard);
    }
    std::vector<std::string> paths;
    for (const auto& s : shard_names) {
      const fs::path p = fs::path(dir) / s;
      if (!fs::exists(p)) throw Error("shard " + p.string() + " listed in " + index_path.string() + " is missing (incomplete download?)");
      paths.push_back(p.string());
    }
    SafetensorsCollection c = open_files(paths, residency);
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      auto t = c.tensors_.find(it.key());
      if (t == c.tensors_.end())
        throw Error("tensor " + it.key() + " listed in " + index_path.string() + " is not in any shard");
      if (fs::path(t->second.file).filename() != it.value().get<std::string>())
        throw Error("tensor " + it.key() + " is in " + t->second.file + " but the index says " + it.value().get<std::string>());
    }
    return c;
  }
  std::vector<std::string> paths;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".safetensors") paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());
  if (paths.empty()) throw Error("no *.safetensors weights in " + dir + " (download model*.safetensors from the hub)");
  return open_files(paths, residency);
}

}  // namespace pg
