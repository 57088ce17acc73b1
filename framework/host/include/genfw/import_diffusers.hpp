#pragma once
/// `runner import diffusers FOLDER --out DIR` (docs/import.md): a diffusers
/// UNet2DModel (DDPMPipeline.save_pretrained's folder, or its unet/ folder) as a
/// completed genfw run of model `ddpm_unet`, so that `runner sample` and `runner
/// compare` treat it like a trained run. Everything is read from local files;
/// what ddpm_unet or genfw's samplers cannot represent is refused, naming the
/// file, the field and its value.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "genfw/export.hpp"
#include "genfw/imported_run.hpp"

namespace genfw {

/// What a diffusers folder maps to, before anything is written: ddpm_unet and
/// the ddpm sampler, their options from the configs.
struct DiffusersPlan : ImportedNetwork {
  std::string unet_config, scheduler_config;   ///< files read ("" scheduler: none, DDPMScheduler's defaults)
};

/// Reads FOLDER's configs and weights and maps them (no network is built yet).
GENFW_API DiffusersPlan plan_diffusers_import(const std::string& folder);

/// diffusers' name of ddpm_unet's parameter `name` in a network of `levels` levels.
GENFW_API std::string diffusers_name_of(const std::string& name, int64_t levels);

/// Puts the plan's tensors into `model` (ddpm_unet built from plan.model): every
/// parameter must be in the file with its shape (1×1 convs from diffusers'
/// Linear [C, C]) and every tensor of the file must be used; genfw::Error
/// naming the weights file and each missing, unexpected or misshapen tensor.
GENFW_API void load_diffusers_weights(torch::nn::Module& model, const ImportedNetwork& plan);

/// Writes the run (config, checkpoint, run file with status "completed"); returns the run file.
GENFW_API std::string import_diffusers(const ImportRequest& request, const Registry& registry);

}  // namespace genfw
