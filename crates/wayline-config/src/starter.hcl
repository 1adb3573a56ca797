# wayline.hcl: how this project is built, deployed and released.
# Reference: `wayline validate` checks this file; `wayline fmt` formats it.

# The project name, as the server knows it.
project = "my-project"

# Input variables: set with `-var name=value`, a `*.auto.wlvars` file or `WL_VAR_name`.
variable "tag" {
  default     = "latest"
  type        = string
  description = "Image tag to build and deploy"
}

app "web" {
  # Labels are attached to every operation and can select scoped settings below.
  labels = {
    "service" = "web"
  }

  # Build an image from the Dockerfile in this directory.
  build {
    use "docker" {}
  }

  # Run it as a container on the local Docker engine.
  deploy {
    use "docker" {
      service_port = 3000
    }
  }

  # Environment for the running app, delivered by the entrypoint.
  config {
    env = {
      "PORT_MESSAGE" = "hello from ${app.name}"
    }
  }
}
