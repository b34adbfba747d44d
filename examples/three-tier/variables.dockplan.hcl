# Input variables. Every *.dockplan.hcl file in this folder is read, and a
# name declared in one file is visible in all of them.
#
# The defaults are the engines of the project's test lab: three dockerd
# instances in network namespaces on 10.213.0.0/24, listening on plain TCP.
# Point them elsewhere with, for example:
#   dockplan -chdir=examples/three-tier validate -var node1_address=ssh://deploy@10.0.0.11
# or with the environment variable DOCKPLAN_VAR_node1_address.

project = "three-tier" # prefixes every container name: three-tier-api-0, ...

variable "node1_address" {
  type        = string
  default     = "tcp://10.213.0.11:2375"
  description = "Docker endpoint of node1 (holds the database)."
}

variable "node2_address" {
  type        = string
  default     = "tcp://10.213.0.12:2375"
  description = "Docker endpoint of node2."
}

variable "node3_address" {
  type        = string
  default     = "tcp://10.213.0.13:2375"
  description = "Docker endpoint of node3."
}

variable "api_replicas" {
  type        = number
  default     = 3
  description = "How many API instances; at most one per host."
  validation {
    condition     = var.api_replicas >= 1 && var.api_replicas <= 3
    error_message = "api_replicas must be 1 to 3: the API runs at most one instance per host and there are three hosts."
  }
}

variable "web_replicas" {
  type        = number
  default     = 2
  description = "How many web instances, on the hosts labelled tier = edge."
  validation {
    condition     = var.web_replicas >= 1 && var.web_replicas <= 2
    error_message = "web_replicas must be 1 or 2: web publishes host port 80 and two hosts are labelled tier = edge."
  }
}

locals {
  image = "dockplan-testapp:dev"
}
