#include "genfw/autoregressive.hpp"

namespace genfw {

AutoregressiveModel::~AutoregressiveModel() = default;

}  // namespace genfw
