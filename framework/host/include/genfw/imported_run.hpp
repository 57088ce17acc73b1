#pragma once
/// What every `runner import FORMAT` shares (docs/import.md): weights read from
/// published files put into a genfw model by name, and the completed run written
/// around them, so that `runner sample` and `runner compare` treat it like a
/// trained run. The formats (import_diffusers.hpp, import_ncsn.hpp) map their
/// files onto an ImportedNetwork; this writes it.
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "genfw/export.hpp"
#include "genfw/options.hpp"

namespace genfw {

class Registry;
class Model;

/// A published network mapped onto genfw's plugins, before anything is written.
struct ImportedNetwork {
  std::string format;                          ///< `runner import` FORMAT: diffusers, ncsn
  std::string source;                          ///< the folder or file given
  std::string weights, weights_sha256;         ///< the weights file read
  std::vector<int64_t> sample_shape;           ///< {C, H, W}
  std::string model_plugin;
  std::map<std::string, OptionValue> model;    ///< its options
  std::string sampler_plugin;                  ///< the sampler the original work used
  std::map<std::string, OptionValue> sampler;  ///< its options
  std::map<std::string, OptionValue> data;     ///< data options the network needs (its input range)
  std::map<std::string, torch::Tensor> tensors;  ///< the weights, by the file's names
  std::vector<std::string> notes;              ///< what was assumed
};

struct ImportRequest {
  std::string source;                   ///< the folder or file to import
  std::string out_dir;                  ///< the run's folder; the run file is <out_dir>/<its name>.h5
  /// An experiment file whose tables the run takes (data, sampler, metrics, features), its
  /// [model] replaced by the mapped one and a [sampler] of the mapped plugin given the mapped
  /// options; "" = the mapped experiment alone (the dataset by image shape, the mapped sampler).
  std::string experiment;
  std::vector<std::string> overrides;   ///< --set table.key=value over the mapped experiment
};

/// Copies `tensors` into `model`'s parameters: the tensor of parameter P is
/// tensors[source_name_of(P)] (a Linear's [C, C] fills a 1×1 conv's [C, C, 1, 1]).
/// Every parameter must be there with its shape, in floating point, and every
/// tensor must be used; genfw::Error naming `weights` and each missing,
/// unexpected or misshapen tensor.
GENFW_API void load_named_weights(torch::nn::Module& model, const std::map<std::string, torch::Tensor>& tensors,
                                  const std::function<std::string(const std::string&)>& source_name_of,
                                  const std::string& weights);

/// The model plugin built on the imported experiment, filled by `load` (which
/// moves the tensors out of `network`), and the run written: config, checkpoint
/// in the trainer's format, run file with status "completed" and root attributes
/// imported_from, imported_weights, imported_weights_sha256. Returns the run file.
GENFW_API std::string write_imported_run(ImportedNetwork network, const ImportRequest& request,
                                         const Registry& registry,
                                         const std::function<void(Model&, ImportedNetwork&)>& load);

}  // namespace genfw
