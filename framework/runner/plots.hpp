#pragma once
#include <string>
#include <vector>

/// Each run's loss curves beside its run file and, for several runs (a sweep or
/// a suite), each metric against NFE or the swept value in their common folder:
/// tools/plot_runs.py. Skipped when GENFW_PLOTS=off or the script is not found;
/// a note on stderr, never an error, when Python lacks h5py or matplotlib.
void draw_plots(const std::vector<std::string>& run_files);
