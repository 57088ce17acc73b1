#pragma once
/// Everything a plugin includes.
#include "genfw/component.hpp"
#include "genfw/dataset.hpp"
#include "genfw/error.hpp"
#include "genfw/metric.hpp"
#include "genfw/model.hpp"
#include "genfw/objective.hpp"
#include "genfw/options.hpp"
#include "genfw/plugin.hpp"
#include "genfw/sampler.hpp"
#include "genfw/schedules.hpp"
#include "genfw/sde.hpp"
