{
  "targets": [
    {
      "target_name": "cri_mesos_native",
      "sources": ["src/addon.cc"],
      "libraries": ["-lseccomp"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
    },
    {
      "target_name": "cri-mesos-launch",
      "type": "executable",
      "sources": ["launch/launch.cc"],
      "defines": ["_GNU_SOURCE"],
      "ldflags": ["-static"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
    }
  ]
}
