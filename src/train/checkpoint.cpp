#include "nmt/train/checkpoint.h"

#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include <torch/serialize.h>

namespace nmt::train {
namespace {

constexpr int64_t kFormatVersion = 1;

void write_state(torch::serialize::OutputArchive& a, const TrainingState& s) {
  a.write("state.step", c10::IValue(s.step));
  a.write("state.epoch", c10::IValue(s.epoch));
  a.write("state.batch_in_epoch", c10::IValue(s.batch_in_epoch));
  a.write("state.best_metric", c10::IValue(s.best_metric));
  a.write("state.best_step", c10::IValue(s.best_step));
  a.write("state.bad_validations", c10::IValue(s.bad_validations));
  a.write("state.lr_base", c10::IValue(s.lr_base));
  a.write("state.lr_bad_count", c10::IValue(s.lr_bad_count));
  a.write("state.elapsed_seconds", c10::IValue(s.elapsed_seconds));
}

c10::IValue read_value(torch::serialize::InputArchive& a, const std::string& key) {
  c10::IValue v;
  a.read(key, v);
  return v;
}

TrainingState read_state(torch::serialize::InputArchive& a) {
  TrainingState s;
  s.step = read_value(a, "state.step").toInt();
  s.epoch = read_value(a, "state.epoch").toInt();
  s.batch_in_epoch = read_value(a, "state.batch_in_epoch").toInt();
  s.best_metric = read_value(a, "state.best_metric").toDouble();
  s.best_step = read_value(a, "state.best_step").toInt();
  s.bad_validations = read_value(a, "state.bad_validations").toInt();
  s.lr_base = read_value(a, "state.lr_base").toDouble();
  s.lr_bad_count = read_value(a, "state.lr_bad_count").toInt();
  s.elapsed_seconds = read_value(a, "state.elapsed_seconds").toDouble();
  return s;
}

torch::serialize::InputArchive open_archive(const std::string& path, c10::Device device) {
  if (!std::filesystem::is_regular_file(path))
    throw std::runtime_error(path + ": checkpoint file not found");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, device);
    if (read_value(archive, "nmt_format").toInt() != kFormatVersion)
      throw std::runtime_error("unsupported checkpoint format version");
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": not a readable nmt checkpoint (corrupt or truncated?): " +
                             std::string(e.what()).substr(0, 200));
  }
  return archive;
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& ck, torch::optim::Optimizer* optimizer) {
  torch::serialize::OutputArchive archive;
  archive.write("nmt_format", c10::IValue(kFormatVersion));
  archive.write("config", c10::IValue(to_yaml(ck.config)));
  archive.write("src_spm", c10::IValue(ck.src_vocab.bytes()));
  archive.write("tgt_spm", c10::IValue(ck.tgt_vocab.bytes()));
  write_state(archive, ck.state);
  torch::serialize::OutputArchive model_archive;
  ck.model->save(model_archive);
  archive.write("model", model_archive);
  if (optimizer) {
    torch::serialize::OutputArchive opt_archive;
    optimizer->save(opt_archive);
    archive.write("optimizer", opt_archive);
  }
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    archive.save_to(tmp);
  } catch (const std::exception& e) {
    std::filesystem::remove(tmp);
    throw std::runtime_error(path + ": cannot write checkpoint: " + e.what());
  }
  std::filesystem::rename(tmp, path);
}

Checkpoint load_checkpoint(const std::string& path, c10::Device device) {
  auto archive = open_archive(path, device);
  Checkpoint ck;
  try {
    ck.config = parse_config(read_value(archive, "config").toStringRef(), path + " (stored config)");
    ck.src_vocab = data::Vocab::from_bytes(read_value(archive, "src_spm").toStringRef());
    ck.tgt_vocab = data::Vocab::from_bytes(read_value(archive, "tgt_spm").toStringRef());
    ck.state = read_state(archive);
    ck.model = models::make_model(ck.config.model, ck.src_vocab.size(), ck.tgt_vocab.size());
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    ck.model->load(model_archive);
    ck.model->to(device);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": invalid nmt checkpoint: " + std::string(e.what()).substr(0, 300));
  }
  return ck;
}

void load_optimizer_state(const std::string& path, torch::optim::Optimizer& optimizer, c10::Device device) {
  auto archive = open_archive(path, device);
  torch::serialize::InputArchive opt_archive;
  if (!archive.try_read("optimizer", opt_archive))
    throw std::runtime_error(path + ": checkpoint holds no optimizer state");
  optimizer.load(opt_archive);
}

std::string find_checkpoint(const std::string& model_dir) {
  for (const char* name : {"best.pt", "last.pt"}) {
    auto p = std::filesystem::path(model_dir) / name;
    if (std::filesystem::is_regular_file(p)) return p.string();
  }
  throw std::runtime_error(model_dir + ": no checkpoint (best.pt or last.pt) in this model directory");
}

}  // namespace nmt::train
