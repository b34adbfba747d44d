output "web_urls" {
  description = "The web front ends, one per edge host."
  value       = [for w in container.web : "http://${w.address}/"]
}

output "db_address" {
  description = "host:port of the database, as the api instances reach it."
  value       = container.db.address
}

output "api_instances" {
  description = "Each api instance's container name and the host it runs on."
  value       = { for a in container.api : a.name => a.host }
}
