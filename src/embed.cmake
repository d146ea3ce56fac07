# embed.cmake: turns a file into a C array, so that a page tickd serves is
# kept as an editable file (src/heap_page.html) and still built into the
# binary. Run as a script:
#   cmake -DIN=<file> -DOUT=<file.c> -DNAME=<symbol> -DMAX=<bytes> -P embed.cmake
# writes `const char NAME[]` (the bytes and a NUL) and `const size_t NAME_len`
# (the bytes, no NUL) into OUT, and fails when IN is over MAX bytes.
file(SIZE "${IN}" size)
if(size GREATER MAX)
  message(FATAL_ERROR "${IN} is ${size} bytes; it must stay at most ${MAX}")
endif()
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
get_filename_component(from "${IN}" NAME)
file(WRITE "${OUT}.tmp"
  "/* Generated from ${from} by embed.cmake at build time; edit ${from}. */\n"
  "#include <stddef.h>\n\n"
  "extern const char ${NAME}[];\n"
  "extern const size_t ${NAME}_len;\n"
  "const char ${NAME}[] = {\n${bytes}0x00};\n"
  "const size_t ${NAME}_len = ${size};\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
