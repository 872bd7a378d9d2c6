#pragma once
// One function per `facebatch` command: parse + validate the options struct,
// then call the typed Run...(options) of lib/. The table is in main.cpp.
namespace facebatch::tools {
int RunIndexCommand(int argc, char** argv);
int RunShardsCommand(int argc, char** argv);
int RunMakeSamplesCommand(int argc, char** argv);
int RunModelCommand(int argc, char** argv);
int RunRenderTemplateCommand(int argc, char** argv);
int RunTrainCommand(int argc, char** argv);
int RunSynthCommand(int argc, char** argv);
int RunFitCommand(int argc, char** argv);
int RunValidateCommand(int argc, char** argv);
int RunInspectCommand(int argc, char** argv);
int RunMergeCommand(int argc, char** argv);
int RunStatusCommand(int argc, char** argv);
int RunExportCommand(int argc, char** argv);
int RunEvalCommand(int argc, char** argv);
int RunReportCommand(int argc, char** argv);
int RunBenchCommand(int argc, char** argv);
int RunEvalModelCommand(int argc, char** argv);
int RunLinearModelCommand(int argc, char** argv);
}  // namespace facebatch::tools
