//===- SafetensorsTest.cpp - safetensors reading and sharded loading ------===//

#include "runtime/Safetensors.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

using namespace moert;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

/// A tensor to write: safetensors dtype name, shape and raw bytes.
struct Tensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

/// int32 values 0..n-1: each element holds its flat index in the full tensor.
std::string iotaI32(int64_t n) {
  std::string bytes(static_cast<size_t>(n) * 4, '\0');
  for (int32_t i = 0; i < n; ++i)
    std::memcpy(&bytes[i * 4], &i, 4);
  return bytes;
}

int64_t product(const std::vector<int64_t> &shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1},
                         std::multiplies<int64_t>());
}

/// The flat full-tensor indices of a rank's part, straight from the
/// definition: per dimension, the rank's piece of every chunk in order.
std::vector<int32_t> expectedPart(const std::vector<int64_t> &shape,
                                  std::vector<int64_t> splits,
                                  std::vector<int64_t> chunks, int64_t rank,
                                  int64_t group) {
  size_t n = shape.size();
  if (chunks.empty())
    chunks.assign(n, 1);
  int64_t part = rank * product(splits) / group;
  std::vector<std::vector<int64_t>> rows(n);
  for (size_t i = n; i-- > 0;) {
    int64_t p = part % splits[i];
    part /= splits[i];
    int64_t chunk = shape[i] / chunks[i], piece = chunk / splits[i];
    for (int64_t c = 0; c < chunks[i]; ++c)
      for (int64_t t = 0; t < piece; ++t)
        rows[i].push_back(c * chunk + p * piece + t);
  }
  std::vector<int32_t> out;
  std::vector<size_t> pos(n, 0);
  int64_t count = 1;
  for (const auto &r : rows)
    count *= static_cast<int64_t>(r.size());
  for (int64_t k = 0; k < count; ++k) {
    int64_t flat = 0;
    for (size_t i = 0; i < n; ++i)
      flat = flat * shape[i] + rows[i][pos[i]];
    out.push_back(static_cast<int32_t>(flat));
    for (size_t d = n; d-- > 0;) {
      if (++pos[d] < rows[d].size())
        break;
      pos[d] = 0;
    }
  }
  return out;
}

class Safetensors : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moert-safetensors-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string path(const std::string &name) const { return dir + "/" + name; }

  /// Writes `header` (its length first, 8 bytes little-endian) then `data`.
  std::string writeRaw(const std::string &name, const std::string &header,
                       const std::string &data, int64_t length = -1) {
    uint64_t n = length < 0 ? header.size() : static_cast<uint64_t>(length);
    std::string bytes;
    for (int i = 0; i < 8; ++i)
      bytes += static_cast<char>((n >> (8 * i)) & 0xff);
    std::ofstream(path(name), std::ios::binary) << bytes << header << data;
    return path(name);
  }
  /// Writes a well-formed safetensors file holding `tensors`.
  std::string write(const std::string &name, const std::vector<Tensor> &tensors,
                    const json &metadata = nullptr) {
    json header = json::object();
    if (!metadata.is_null())
      header["__metadata__"] = metadata;
    std::string data;
    for (const Tensor &t : tensors) {
      header[t.name] = {{"dtype", t.dtype},
                        {"shape", t.shape},
                        {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
      data += t.bytes;
    }
    return writeRaw(name, header.dump(), data);
  }
  std::unique_ptr<WeightLoader> openLoader(const std::string &p) {
    std::string error;
    auto loader = WeightLoader::open(p, error);
    EXPECT_TRUE(loader) << error;
    return loader;
  }
  /// Loads `spec` for `rank` of `group` as int32 values.
  std::vector<int32_t> loadI32(WeightLoader &loader, const WeightSpec &spec,
                               int64_t rank, int64_t group) {
    std::vector<int32_t> out(WeightLoader::partBytes(spec) / 4, -1);
    std::string error;
    EXPECT_TRUE(loader.load(spec, rank, group, out.data(), error)) << error;
    return out;
  }
  /// Writes an iota I32 tensor of `shape` and checks every rank's part.
  void checkAllRanks(const std::vector<int64_t> &shape,
                     const std::vector<int64_t> &splits,
                     const std::vector<int64_t> &chunks, int64_t group) {
    auto loader = openLoader(
        write("iota.safetensors", {{"w", "I32", shape, iotaI32(product(shape))}}));
    WeightSpec spec{"w", shape, DType::I32, splits, chunks};
    for (int64_t rank = 0; rank < group; ++rank)
      EXPECT_EQ(loadI32(*loader, spec, rank, group),
                expectedPart(shape, splits, chunks, rank, group))
          << "rank " << rank;
  }

  std::string dir;
};

TEST(DType, NamesAndSizes) {
  DType dtype;
  ASSERT_TRUE(parseDType("F8_E4M3", dtype));
  EXPECT_EQ(dtype, DType::F8E4M3);
  EXPECT_EQ(dtypeSize(DType::F8E4M3), 1);
  EXPECT_EQ(dtypeSize(DType::BF16), 2);
  EXPECT_EQ(dtypeSize(DType::F16), 2);
  EXPECT_EQ(dtypeSize(DType::F32), 4);
  EXPECT_EQ(dtypeSize(DType::I32), 4);
  EXPECT_EQ(dtypeSize(DType::I64), 8);
  EXPECT_STREQ(dtypeName(DType::BF16), "BF16");
  EXPECT_FALSE(parseDType("F64", dtype));
}

TEST_F(Safetensors, ReadsNamesShapesAndDTypes) {
  std::string p = write("model.safetensors",
                        {{"b.weight", "BF16", {2, 3}, std::string(12, 'x')},
                         {"a.bias", "F32", {4}, std::string(16, 'y')},
                         {"step", "I64", {}, std::string(8, 'z')}},
                        {{"format", "pt"}});
  std::string error;
  auto file = SafetensorsFile::open(p, error);
  ASSERT_TRUE(file) << error;
  EXPECT_EQ(file->names(), (std::vector<std::string>{"a.bias", "b.weight", "step"}));
  EXPECT_TRUE(file->has("step"));
  EXPECT_FALSE(file->has("__metadata__"));
  const TensorInfo *b = file->find("b.weight");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::BF16);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(b->numBytes, 12);
  EXPECT_EQ(std::string(reinterpret_cast<const char *>(b->data), 12), std::string(12, 'x'));
  const TensorInfo *step = file->find("step");
  EXPECT_TRUE(step->shape.empty());
  EXPECT_EQ(std::string(reinterpret_cast<const char *>(step->data), 8), std::string(8, 'z'));
  EXPECT_EQ(file->find("missing"), nullptr);
  ASSERT_TRUE(SafetensorsFile::open(writeRaw("empty.safetensors", "{}", ""), error));
}

TEST_F(Safetensors, HeaderErrorsNameTheFileAndTensor) {
  std::string p = path("model.safetensors");
  auto openError = [&](const std::string &header, const std::string &data,
                       int64_t length = -1) {
    writeRaw("model.safetensors", header, data, length);
    std::string error;
    EXPECT_FALSE(SafetensorsFile::open(p, error));
    std::string viaLoader;
    EXPECT_FALSE(WeightLoader::open(p, viaLoader));
    EXPECT_EQ(error, viaLoader);
    return error;
  };
  std::ofstream(p, std::ios::binary) << "abc";
  std::string error;
  EXPECT_FALSE(SafetensorsFile::open(p, error));
  EXPECT_EQ(error, p + ": file is 3 bytes, too short for the 8-byte header length");
  EXPECT_FALSE(SafetensorsFile::open(path("absent.safetensors"), error));
  EXPECT_EQ(error, path("absent.safetensors") + ": cannot open: No such file or directory");

  EXPECT_EQ(openError("{}", "", 100),
            p + ": header length 100 runs past the end of the file (10 bytes)");
  EXPECT_EQ(openError("{nope", "").rfind(p + ": header is not valid JSON: parse error at line 1, column 3: syntax error", 0), 0u);
  EXPECT_EQ(openError("[1,2]", ""), p + ": header is a JSON array, expected an object of tensors");
  EXPECT_EQ(openError(R"({"w":3})", ""),
            p + ": tensor 'w': entry is a JSON number, expected an object with dtype, shape and data_offsets");
  EXPECT_EQ(openError(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", std::string(8, '\0')),
            p + ": tensor 'w': unsupported dtype 'F64' (supported: BF16, F16, F32, F8_E4M3, I32, I64)");
  EXPECT_EQ(openError(R"({"w":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,8]}})", std::string(8, '\0')),
            p + ": tensor 'w': shape [2,-1] is not a list of non-negative integers");
  EXPECT_EQ(openError(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", std::string(8, '\0')),
            p + ": tensor 'w': data_offsets [8,0] are not [begin, end] with 0 <= begin <= end");
  EXPECT_EQ(openError(R"({"w":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}})", std::string(4, '\0')),
            p + ": tensor 'w': data_offsets [0, 8) run past the end of the data section (4 bytes)");
  EXPECT_EQ(openError(R"({"lm_head.weight":{"dtype":"BF16","shape":[4,4],"data_offsets":[0,10]}})", std::string(32, '\0')),
            p + ": tensor 'lm_head.weight': data_offsets [0, 10) hold 10 bytes but shape [4, 4] of BF16 needs 32");
}

TEST_F(Safetensors, LoadsAWholeTensorByteExact) {
  std::string bytes(30, '\0');
  std::mt19937 rng(7);
  for (char &c : bytes)
    c = static_cast<char>(rng() & 0xff);
  auto loader = openLoader(write("model.safetensors", {{"w", "BF16", {3, 5}, bytes}}));
  for (std::vector<int64_t> splits : {std::vector<int64_t>{}, std::vector<int64_t>{1, 1}}) {
    WeightSpec spec{"w", {3, 5}, DType::BF16, splits, {}};
    ASSERT_EQ(WeightLoader::partBytes(spec), 30);
    std::string out(30, '\0');
    std::string error;
    ASSERT_TRUE(loader->load(spec, 0, 1, &out[0], error)) << error;
    EXPECT_EQ(out, bytes);
  }
}

TEST_F(Safetensors, SplitsDimensionZero) {
  auto loader = openLoader(write("m.safetensors", {{"w", "I32", {6, 4}, iotaI32(24)}}));
  WeightSpec spec{"w", {6, 4}, DType::I32, {3, 1}, {}};
  EXPECT_EQ(WeightLoader::partBytes(spec), 32);
  EXPECT_EQ(loadI32(*loader, spec, 1, 3), (std::vector<int32_t>{8, 9, 10, 11, 12, 13, 14, 15}));
  checkAllRanks({6, 4}, {3, 1}, {}, 3);
}

TEST_F(Safetensors, SplitsDimensionOne) {
  auto loader = openLoader(write("m.safetensors", {{"w", "I32", {4, 6}, iotaI32(24)}}));
  WeightSpec spec{"w", {4, 6}, DType::I32, {1, 2}, {}};
  EXPECT_EQ(loadI32(*loader, spec, 1, 2),
            (std::vector<int32_t>{3, 4, 5, 9, 10, 11, 15, 16, 17, 21, 22, 23}));
  checkAllRanks({4, 6}, {1, 2}, {}, 2);
}

TEST_F(Safetensors, SplitsSeveralDimensions) {
  checkAllRanks({4, 6, 2, 3}, {2, 3, 1, 1}, {}, 6);
  checkAllRanks({2, 4, 6}, {1, 2, 3}, {}, 6);
  checkAllRanks({4, 4, 4}, {2, 1, 2}, {}, 4);
}

TEST_F(Safetensors, ChunkedGateUpTakesTheRanksPieceOfEachChunk) {
  // Gated experts [E=4, 2*I=8, D=3]: gate rows 0..3, up rows 4..7.
  auto loader = openLoader(write("m.safetensors", {{"up", "I32", {4, 8, 3}, iotaI32(96)}}));
  WeightSpec spec{"up", {4, 8, 3}, DType::I32, {2, 2, 1}, {1, 2, 1}};
  std::vector<int32_t> rank3 = loadI32(*loader, spec, 3, 4);
  std::vector<int32_t> expected; // experts 2..3; gate rows 2,3 then up rows 6,7
  for (int32_t e : {2, 3})
    for (int32_t row : {2, 3, 6, 7})
      for (int32_t d = 0; d < 3; ++d)
        expected.push_back((e * 8 + row) * 3 + d);
  EXPECT_EQ(rank3, expected);
  checkAllRanks({4, 8, 3}, {2, 2, 1}, {1, 2, 1}, 4);
  checkAllRanks({4, 8, 3}, {2, 2, 1}, {1, 2, 1}, 8);
  checkAllRanks({2, 8, 4}, {1, 2, 2}, {1, 2, 1}, 4); // chunks outside the cut
  checkAllRanks({3, 12}, {1, 2}, {1, 3}, 2);          // three chunks, last dim
  checkAllRanks({2, 8, 3}, {1, 1, 1}, {1, 2, 1}, 1); // chunks, no split
}

TEST_F(Safetensors, ReplicatedPartsGoToConsecutiveRanks) {
  auto loader = openLoader(write("m.safetensors", {{"w", "I32", {4, 2}, iotaI32(8)}}));
  WeightSpec spec{"w", {4, 2}, DType::I32, {2, 1}, {}};
  for (int64_t rank = 0; rank < 8; ++rank)
    EXPECT_EQ(loadI32(*loader, spec, rank, 8),
              rank < 4 ? (std::vector<int32_t>{0, 1, 2, 3}) : (std::vector<int32_t>{4, 5, 6, 7}))
        << "rank " << rank;
}

TEST_F(Safetensors, LoadErrors) {
  auto loader = openLoader(write(
      "model.safetensors",
      {{"model.layers.0.mlp.gate.weight", "BF16", {4, 6}, std::string(48, '\0')},
       {"model.norm.weight", "BF16", {6}, std::string(12, '\0')},
       {"lm_head.weight", "BF16", {8, 6}, std::string(96, '\0')},
       {"model.embed_tokens.weight", "BF16", {8, 6}, std::string(96, '\0')}}));
  std::vector<char> out(256, '\x5a');
  auto loadError = [&](const WeightSpec &spec, int64_t rank, int64_t group) {
    std::string error;
    EXPECT_FALSE(loader->load(spec, rank, group, out.data(), error));
    return error;
  };
  const std::string gate = "model.layers.0.mlp.gate.weight";
  EXPECT_EQ(loadError({"model.layers.0.mlp.gate.weigth", {4, 6}, DType::BF16, {}, {}}, 0, 1),
            "weight 'model.layers.0.mlp.gate.weigth' is not in the checkpoint (4 tensors in 1 file); "
            "did you mean 'model.layers.0.mlp.gate.weight'?");
  EXPECT_EQ(loadError({"model.layers.0.mlp.experts.down_proj", {4, 6}, DType::BF16, {}, {}}, 0, 1),
            "weight 'model.layers.0.mlp.experts.down_proj' is not in the checkpoint (4 tensors in 1 file)");
  EXPECT_EQ(loadError({gate, {4, 6}, DType::F32, {}, {}}, 0, 1),
            "weight '" + gate + "': checkpoint has BF16, the model expects F32");
  EXPECT_EQ(loadError({gate, {4, 4}, DType::BF16, {}, {}}, 0, 1),
            "weight '" + gate + "': checkpoint shape [4, 6] but the model expects [4, 4]");
  EXPECT_EQ(loadError({gate, {4, 6}, DType::BF16, {1, 4}, {}}, 0, 4),
            "weight '" + gate + "': dimension 1 of size 6 does not split into 4 equal parts");
  EXPECT_EQ(loadError({gate, {4, 6}, DType::BF16, {1, 2}, {1, 2}}, 0, 2),
            "weight '" + gate + "': dimension 1 of size 6 does not split into 2 chunks of 2 equal parts");
  EXPECT_EQ(loadError({gate, {4, 6}, DType::BF16, {2}, {}}, 0, 2),
            "weight '" + gate + "': splits [2] give 1 dimension but the tensor has 2");
  EXPECT_EQ(loadError({gate, {4, 6}, DType::BF16, {0, 1}, {}}, 0, 2),
            "weight '" + gate + "': splits [0, 1] must all be positive");
  EXPECT_EQ(loadError({gate, {4, 6}, DType::BF16, {2, 1}, {}}, 0, 3),
            "weight '" + gate + "': a group of 3 ranks cannot share 2 parts evenly "
            "(the group size must be a multiple of 2)");
  EXPECT_EQ(loadError({gate, {4, 6}, DType::BF16, {2, 1}, {}}, 4, 4),
            "weight '" + gate + "': rank 4 is outside the group of 4 ranks (0..3)");
  EXPECT_EQ(loadError({gate, {4, 6}, DType::BF16, {2, 1}, {}}, -1, 4),
            "weight '" + gate + "': rank -1 is outside the group of 4 ranks (0..3)");
  EXPECT_EQ(loadError({gate, {4, 6}, DType::BF16, {}, {}}, 0, 0),
            "weight '" + gate + "': group size 0 must be positive");
  EXPECT_EQ(std::count(out.begin(), out.end(), '\x5a'), 256) << "a failed load wrote";
  std::string error;
  EXPECT_FALSE(loader->load({gate, {4, 6}, DType::BF16, {}, {}}, 0, 1, nullptr, error));
  EXPECT_EQ(error, "weight '" + gate + "': no destination buffer");
  EXPECT_EQ(WeightLoader::partBytes({gate, {4, 6}, DType::BF16, {1, 4}, {}}), -1);
}

TEST_F(Safetensors, IndexSpansTwoFiles) {
  write("model-00001-of-00002.safetensors",
        {{"a", "I32", {2, 2}, iotaI32(4)}, {"b", "I32", {3}, iotaI32(3)}});
  write("model-00002-of-00002.safetensors", {{"c", "I32", {4, 2}, iotaI32(8)}});
  json index = {{"metadata", {{"total_size", 60}}},
                {"weight_map",
                 {{"a", "model-00001-of-00002.safetensors"},
                  {"b", "model-00001-of-00002.safetensors"},
                  {"c", "model-00002-of-00002.safetensors"}}}};
  std::ofstream(path("model.safetensors.index.json")) << index.dump(2);
  for (const std::string &p : {path("model.safetensors.index.json"), dir, dir + "/"}) {
    auto loader = openLoader(p);
    ASSERT_TRUE(loader);
    EXPECT_EQ(loader->numFiles(), 2u);
    EXPECT_EQ(loader->names(), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(loader->totalBytes(), 60);
    EXPECT_EQ(loadI32(*loader, {"c", {4, 2}, DType::I32, {2, 1}, {}}, 1, 2),
              (std::vector<int32_t>{4, 5, 6, 7}));
    EXPECT_EQ(loadI32(*loader, {"a", {2, 2}, DType::I32, {1, 2}, {}}, 0, 2),
              (std::vector<int32_t>{0, 2}));
    std::string error;
    int32_t sink[8];
    EXPECT_FALSE(loader->load({"d", {3}, DType::I32, {}, {}}, 0, 1, sink, error));
    EXPECT_EQ(error, "weight 'd' is not in the checkpoint (3 tensors in 2 files); did you mean 'a'?");
  }
  index["weight_map"]["z"] = "model-00002-of-00002.safetensors";
  std::ofstream(path("model.safetensors.index.json")) << index.dump();
  std::string error;
  EXPECT_FALSE(WeightLoader::open(dir, error));
  EXPECT_EQ(error, path("model.safetensors.index.json") +
                       ": weight_map puts 'z' in model-00002-of-00002.safetensors, which has no such tensor");
  std::ofstream(path("model.safetensors.index.json")) << R"({"metadata": {}})";
  EXPECT_FALSE(WeightLoader::open(dir, error));
  EXPECT_EQ(error, path("model.safetensors.index.json") +
                       ": no \"weight_map\" object (expected a Hugging Face model.safetensors.index.json)");
}

TEST_F(Safetensors, FolderWithoutIndex) {
  std::string error;
  EXPECT_FALSE(WeightLoader::open(dir, error));
  EXPECT_EQ(error, dir + ": the folder holds neither model.safetensors.index.json nor a .safetensors file");
  write("model.safetensors", {{"w", "I32", {2}, iotaI32(2)}});
  auto loader = openLoader(dir);
  ASSERT_TRUE(loader);
  EXPECT_EQ(loader->numFiles(), 1u);
  EXPECT_TRUE(loader->has("w"));
  write("extra.safetensors", {{"w", "I32", {2}, iotaI32(2)}});
  EXPECT_FALSE(WeightLoader::open(dir, error));
  EXPECT_EQ(error, path("model.safetensors") + ": tensor 'w' is also in " + path("extra.safetensors"));
}

TEST_F(Safetensors, ProgressReportsBytesAfterEachTensor) {
  auto loader = openLoader(write("m.safetensors", {{"a", "I32", {4, 2}, iotaI32(8)},
                                                   {"b", "I32", {6}, iotaI32(6)},
                                                   {"c", "BF16", {2}, std::string(4, '\0')}}));
  std::vector<std::pair<int64_t, int64_t>> calls;
  auto record = [&](int64_t done, int64_t total) { calls.emplace_back(done, total); };
  loader->setProgress(record);
  std::vector<char> out(64);
  std::string error;
  ASSERT_TRUE(loader->load({"a", {4, 2}, DType::I32, {}, {}}, 0, 1, out.data(), error));
  EXPECT_FALSE(loader->load({"b", {6}, DType::F32, {}, {}}, 0, 1, out.data(), error));
  ASSERT_TRUE(loader->load({"b", {6}, DType::I32, {}, {}}, 0, 1, out.data(), error));
  ASSERT_TRUE(loader->load({"c", {2}, DType::BF16, {}, {}}, 0, 1, out.data(), error));
  EXPECT_EQ(calls, (std::vector<std::pair<int64_t, int64_t>>{{32, 60}, {56, 60}, {60, 60}}));

  // A rank that loads only its parts says how many bytes it expects.
  std::vector<WeightSpec> specs = {{"a", {4, 2}, DType::I32, {2, 1}, {}},
                                   {"b", {6}, DType::I32, {2}, {}}};
  int64_t expected = 0;
  for (const WeightSpec &spec : specs)
    expected += WeightLoader::partBytes(spec);
  calls.clear();
  loader->setProgress(record, expected);
  for (const WeightSpec &spec : specs)
    ASSERT_TRUE(loader->load(spec, 1, 2, out.data(), error)) << error;
  EXPECT_EQ(calls, (std::vector<std::pair<int64_t, int64_t>>{{16, 28}, {28, 28}}));
}

} // namespace
