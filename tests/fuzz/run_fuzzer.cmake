# run_fuzzer.cmake - one bounded fuzzing run, for ctest (cmake -P).
#
#   cmake -DFUZZER=<harness> -DNAME=<name> -DSEEDS=<seed dir> -DWORK=<dir>
#         -DSECONDS=<N> -P run_fuzzer.cmake
#
# Starts from a fresh copy of the seeds in WORK/corpus (libFuzzer adds what it
# finds there; the tree is never written to), fuzzes for SECONDS, keeps the
# whole log in WORK/fuzz.log and prints one line of libFuzzer's final stats:
#
#   fuzz_itch: 812345 execs in 45 s (18052/s), cov 1234, ft 5678, corpus 321 inputs
#
# On a failure (crash, sanitizer report, leak, slow input, out of memory) it
# prints the end of the log and the saved input (WORK/artifacts/) and fails.

foreach(v FUZZER NAME SEEDS WORK SECONDS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${v}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(GLOB seeds LIST_DIRECTORIES false ${SEEDS}/*)
if(NOT seeds)
  message(FATAL_ERROR "${NAME}: no seeds in ${SEEDS}")
endif()
file(COPY ${seeds} DESTINATION ${WORK}/corpus)

execute_process(
  COMMAND ${FUZZER}
          -max_total_time=${SECONDS}
          -rss_limit_mb=2048
          -timeout=30
          -print_final_stats=1
          -artifact_prefix=${WORK}/artifacts/
          ${WORK}/corpus
  WORKING_DIRECTORY ${WORK}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE log
  ERROR_VARIABLE log)
file(WRITE ${WORK}/fuzz.log "${log}")

# libFuzzer's final stats and its last status line ("#N DONE cov: ...").
set(execs "?")
set(rate "?")
set(cov "?")
set(ft "?")
set(corp "?")
if(log MATCHES "stat::number_of_executed_units: +([0-9]+)")
  set(execs ${CMAKE_MATCH_1})
  if(SECONDS GREATER 0)
    math(EXPR rate "${execs} / ${SECONDS}")
  endif()
endif()
if(log MATCHES "DONE +cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+)")
  set(cov ${CMAKE_MATCH_1})
  set(ft ${CMAKE_MATCH_2})
  set(corp ${CMAKE_MATCH_3})
endif()

if(NOT rc EQUAL 0)
  string(LENGTH "${log}" len)
  if(len GREATER 12000)
    math(EXPR from "${len} - 12000")
    string(SUBSTRING "${log}" ${from} -1 log)
    set(log "...\n${log}")
  endif()
  file(GLOB artifacts ${WORK}/artifacts/*)
  message(NOTICE "${log}")
  message(FATAL_ERROR "${NAME}: FAILED (exit ${rc}) after ${execs} execs; input saved as: "
                      "${artifacts}\nfull log: ${WORK}/fuzz.log\n"
                      "reproduce: ${FUZZER} <input>")
endif()
message(NOTICE "${NAME}: ${execs} execs in ${SECONDS} s (${rate}/s), cov ${cov}, ft ${ft}, "
               "corpus ${corp} inputs")
