package org.apache.dubbo.registry.zookeeper;

import java.util.HashMap;
import java.util.Map;

// The payload class Dubbo 3 registers with Curator (same package, name and fields), so that
// Curator's JSON carries the same "@class" and shape as a real Dubbo instance.
public class ZookeeperInstance {
    private String id;
    private String name;
    private Map<String, String> metadata = new HashMap<>();

    @SuppressWarnings("unused")
    private ZookeeperInstance() {
    }

    public ZookeeperInstance(String id, String name) {
        this.id = id;
        this.name = name;
    }

    public String getId() { return id; }
    public void setId(String id) { this.id = id; }
    public String getName() { return name; }
    public void setName(String name) { this.name = name; }
    public Map<String, String> getMetadata() { return metadata; }
    public void setMetadata(Map<String, String> metadata) { this.metadata = metadata; }
}
