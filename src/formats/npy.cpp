#include "formats/npy.h"

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/file.h"
#include "paligemma/error.h"

namespace pg {

std::vector<float> NpyArray::as_f32() const {
  if (dtype != "<f4") throw Error("npy array has dtype " + dtype + ", expected <f4");
  std::vector<float> v(count());
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  std::ostringstream dict;
  dict << "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  size_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dict << shape[i] << (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
    if (i + 1 < shape.size()) dict << " ";
    n *= size_t(shape[i]);
  }
  dict << "), }";
  std::string header = dict.str();
  // Pad with spaces so that magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error("cannot write " + path);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = uint16_t(header.size());
  const char len_bytes[2] = {char(len & 0xff), char(len >> 8)};
  out.write(len_bytes, 2);
  out.write(header.data(), std::streamsize(header.size()));
  out.write(reinterpret_cast<const char*>(data), std::streamsize(n * 4));
  if (!out) throw Error("failed writing " + path + " (disk full?)");
}

NpyArray read_npy(const std::string& path) {
  check_regular_file(path, ".npy file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path);
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw Error(path + " is not a .npy file");
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    in.read(reinterpret_cast<char*>(b), 2);
    header_len = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    in.read(reinterpret_cast<char*>(b), 4);
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (uint32_t(b[3]) << 24);
  }
  std::string header(header_len, '\0');
  in.read(header.data(), header_len);
  if (!in) throw Error(path + " has a truncated header");
  NpyArray a;
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']+)'"))) throw Error(path + ": no descr");
  a.dtype = m[1];
  if (a.dtype != "<f4" && a.dtype != "|u1") throw Error(path + ": unsupported dtype " + a.dtype);
  if (header.find("'fortran_order': True") != std::string::npos) throw Error(path + ": Fortran order unsupported");
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)"))) throw Error(path + ": no shape");
  const std::string dims = m[1];
  std::regex num("\\d+");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator(); ++it)
    a.shape.push_back(std::stoll(it->str()));
  const size_t elem = a.dtype == "<f4" ? 4 : 1;
  a.bytes.resize(a.count() * elem);
  in.read(reinterpret_cast<char*>(a.bytes.data()), std::streamsize(a.bytes.size()));
  if (!in) throw Error(path + " is truncated");
  return a;
}

}  // namespace pg
