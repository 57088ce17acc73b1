#pragma once
/// `runner import ncsn CHECKPOINT --out DIR` (docs/import.md): a checkpoint of
/// the original NCSN code (ermongroup/ncsn, Song & Ermon 2019: the
/// `checkpoint.pth` its anneal runner saves, `[state_dict, optimizer_state]` of
/// a DataParallel `CondRefineNetDilated`) as a completed genfw run of model
/// `ncsn`, which has that network module for module. The checkpoint is read as
/// data (genfw/pytorch_checkpoint.hpp); NCSNv2 and score_sde checkpoints, whose
/// networks genfw does not have, are refused saying so.
#include <torch/torch.h>

#include <string>

#include "genfw/export.hpp"
#include "genfw/imported_run.hpp"

namespace genfw {

/// Reads CHECKPOINT and maps it onto the ncsn model (width, channels and levels
/// from its tensors; σ range, data range and sampler from the reference's configs).
GENFW_API ImportedNetwork plan_ncsn_import(const std::string& checkpoint);

/// The reference's name of ncsn's parameter `name` (without DataParallel's `module.`).
GENFW_API std::string ncsn_reference_name_of(const std::string& name);

/// Puts the plan's tensors into `model` (ncsn built from plan.model); genfw::Error
/// naming the checkpoint and each missing, unexpected or misshapen tensor.
GENFW_API void load_ncsn_weights(torch::nn::Module& model, const ImportedNetwork& plan);

/// Writes the run (config, checkpoint, run file with status "completed"); returns the run file.
GENFW_API std::string import_ncsn(const ImportRequest& request, const Registry& registry);

}  // namespace genfw
