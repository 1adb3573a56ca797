project = "busybox-docker"

app "web" {
  build {
    use "docker" {}

    # Tag the image locally; nothing is pushed.
    registry {
      use "docker" {
        image = "busybox-docker/web"
        tag   = "latest"
        local = true
      }
    }
  }

  deploy {
    use "docker" {
      service_port = 3000
    }
  }
}
