# firetail's Datadog log pipeline, the Terraform form of pipeline.json beside this file.
# Generated from firetail-transform's tag table by
#   cargo run -p firetail-transform --example datadog-pipeline -- --out-dir DIR
# (with FIRETAIL_TAG_MAP / FIRETAIL_EXTRA_TAGS set as on the Lambda); regenerate, don't edit.
# Needs the DataDog/datadog provider. Put datadog_logs_custom_pipeline.firetail.id first in
# your datadog_logs_pipeline_order (docs/deploy.md, "The Datadog side").

resource "datadog_logs_custom_pipeline" "firetail" {
  name        = "firetail"
  is_enabled  = true
  description = "firetail-transform's logs (firetail_transform:1): tag attributes to tags; service, status, date and source from the log's fields. Generated from firetail's tag table (lambda-transform/datadog); regenerate rather than edit."

  filter {
    query = "@firetail_transform:1"
  }

  processor {
    service_remapper {
      name       = "service attribute as the log's service"
      is_enabled = true
      sources    = ["service"]
    }
  }

  processor {
    status_remapper {
      name       = "status attribute as the log's status"
      is_enabled = true
      sources    = ["status"]
    }
  }

  processor {
    date_remapper {
      name       = "timestamp attribute as the log's date"
      is_enabled = true
      sources    = ["timestamp"]
    }
  }

  processor {
    attribute_remapper {
      name                 = "ddsource attribute to the source tag"
      is_enabled           = true
      sources              = ["ddsource"]
      source_type          = "attribute"
      target               = "source"
      target_type          = "tag"
      preserve_source      = true
      override_on_conflict = true
    }
  }

  processor {
    pipeline {
      name       = "firetail tags 1/2"
      is_enabled = true

      filter {
        query = "@firetail_transform:1"
      }

      processor {
        attribute_remapper {
          name                 = "kube_namespace attribute to the kube_namespace tag"
          is_enabled           = true
          sources              = ["kube_namespace"]
          source_type          = "attribute"
          target               = "kube_namespace"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "pod_name attribute to the pod_name tag"
          is_enabled           = true
          sources              = ["pod_name"]
          source_type          = "attribute"
          target               = "pod_name"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "kube_container_name attribute to the kube_container_name tag"
          is_enabled           = true
          sources              = ["kube_container_name"]
          source_type          = "attribute"
          target               = "kube_container_name"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "container_id attribute to the container_id tag"
          is_enabled           = true
          sources              = ["container_id"]
          source_type          = "attribute"
          target               = "container_id"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "kube_replica_set attribute to the kube_replica_set tag"
          is_enabled           = true
          sources              = ["kube_replica_set"]
          source_type          = "attribute"
          target               = "kube_replica_set"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "kube_deployment attribute to the kube_deployment tag"
          is_enabled           = true
          sources              = ["kube_deployment"]
          source_type          = "attribute"
          target               = "kube_deployment"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "kube_stateful_set attribute to the kube_stateful_set tag"
          is_enabled           = true
          sources              = ["kube_stateful_set"]
          source_type          = "attribute"
          target               = "kube_stateful_set"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "kube_daemon_set attribute to the kube_daemon_set tag"
          is_enabled           = true
          sources              = ["kube_daemon_set"]
          source_type          = "attribute"
          target               = "kube_daemon_set"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "kube_job attribute to the kube_job tag"
          is_enabled           = true
          sources              = ["kube_job"]
          source_type          = "attribute"
          target               = "kube_job"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "kube_cronjob attribute to the kube_cronjob tag"
          is_enabled           = true
          sources              = ["kube_cronjob"]
          source_type          = "attribute"
          target               = "kube_cronjob"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "image_name attribute to the image_name tag"
          is_enabled           = true
          sources              = ["image_name"]
          source_type          = "attribute"
          target               = "image_name"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }
    }
  }

  processor {
    pipeline {
      name       = "firetail tags 2/2"
      is_enabled = true

      filter {
        query = "@firetail_transform:1"
      }

      processor {
        attribute_remapper {
          name                 = "short_image attribute to the short_image tag"
          is_enabled           = true
          sources              = ["short_image"]
          source_type          = "attribute"
          target               = "short_image"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "image_tag attribute to the image_tag tag"
          is_enabled           = true
          sources              = ["image_tag"]
          source_type          = "attribute"
          target               = "image_tag"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "kube_app_name attribute to the kube_app_name tag"
          is_enabled           = true
          sources              = ["kube_app_name"]
          source_type          = "attribute"
          target               = "kube_app_name"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "kube_app_instance attribute to the kube_app_instance tag"
          is_enabled           = true
          sources              = ["kube_app_instance"]
          source_type          = "attribute"
          target               = "kube_app_instance"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "kube_app_version attribute to the kube_app_version tag"
          is_enabled           = true
          sources              = ["kube_app_version"]
          source_type          = "attribute"
          target               = "kube_app_version"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "kube_app_component attribute to the kube_app_component tag"
          is_enabled           = true
          sources              = ["kube_app_component"]
          source_type          = "attribute"
          target               = "kube_app_component"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "kube_app_part_of attribute to the kube_app_part_of tag"
          is_enabled           = true
          sources              = ["kube_app_part_of"]
          source_type          = "attribute"
          target               = "kube_app_part_of"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "kube_app_managed_by attribute to the kube_app_managed_by tag"
          is_enabled           = true
          sources              = ["kube_app_managed_by"]
          source_type          = "attribute"
          target               = "kube_app_managed_by"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "env attribute to the env tag"
          is_enabled           = true
          sources              = ["env"]
          source_type          = "attribute"
          target               = "env"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }

      processor {
        attribute_remapper {
          name                 = "version attribute to the version tag"
          is_enabled           = true
          sources              = ["version"]
          source_type          = "attribute"
          target               = "version"
          target_type          = "tag"
          preserve_source      = true
          override_on_conflict = false
        }
      }
    }
  }
}
