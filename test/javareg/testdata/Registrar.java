// Registrar registers Dubbo providers and consumers in ZooKeeper the way Dubbo does, for
// dubboreach's tests: interface-level znodes named java.net.URLEncoder.encode(url, "UTF-8")
// under /<root>/<interface>/<category>/ (ephemeral, or persistent for dynamic=false), and
// application-level instances through Apache Curator's ServiceDiscovery, whose JSON is then
// exactly what the library writes.
//
// It reads tab-separated commands on stdin, one per line, and answers "ok <result>" or
// "error <message>" on stdout:
//   url <ephemeral|persistent> <root> <category> <interface> <full URL>  -> created path
//   instance <basePath> <name> <address> <port> <protocol>               -> instance id
//   unregister <basePath> <name> <id>
//   delete <path>
// Until stdin closes, its session keeps the ephemeral nodes alive.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;
import org.apache.zookeeper.CreateMode;

import org.apache.dubbo.registry.zookeeper.ZookeeperInstance;

public class Registrar {
    public static void main(String[] args) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.newClient(args[0], 30000, 10000, new ExponentialBackoffRetry(200, 10));
        client.start();
        client.blockUntilConnected();
        Map<String, ServiceDiscovery<ZookeeperInstance>> discoveries = new HashMap<>();
        Map<String, ServiceInstance<ZookeeperInstance>> instances = new HashMap<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        System.out.println("ready");
        System.out.flush();
        String line;
        while ((line = in.readLine()) != null) {
            String[] a = line.split("\t", -1);
            try {
                String result = "";
                switch (a[0]) {
                    case "url": {
                        // Dubbo: ZookeeperRegistry.toUrlPath = toCategoryPath + "/" + URL.encode(url.toFullString())
                        CreateMode mode = a[1].equals("persistent") ? CreateMode.PERSISTENT : CreateMode.EPHEMERAL;
                        String dir = a[2] + "/" + URLEncoder.encode(a[4], "UTF-8") + "/" + a[3];
                        String path = dir + "/" + URLEncoder.encode(a[5], "UTF-8");
                        client.create().creatingParentContainersIfNeeded().withMode(mode).forPath(path);
                        result = path;
                        break;
                    }
                    case "instance": {
                        String base = a[1];
                        ServiceDiscovery<ZookeeperInstance> sd = discoveries.get(base);
                        if (sd == null) {
                            sd = ServiceDiscoveryBuilder.builder(ZookeeperInstance.class).client(client).basePath(base)
                                .serializer(new JsonInstanceSerializer<>(ZookeeperInstance.class)).build();
                            sd.start();
                            discoveries.put(base, sd);
                        }
                        String id = a[3] + ":" + a[4];
                        ZookeeperInstance payload = new ZookeeperInstance(id, a[2]);
                        payload.getMetadata().put("dubbo.endpoints", "[{\"port\":" + a[4] + ",\"protocol\":\"" + a[5] + "\"}]");
                        payload.getMetadata().put("dubbo.metadata.revision", "0123456789abcdef");
                        payload.getMetadata().put("dubbo.metadata.storage-type", "local");
                        ServiceInstance<ZookeeperInstance> si = ServiceInstance.<ZookeeperInstance>builder()
                            .id(id).name(a[2]).address(a[3]).port(Integer.parseInt(a[4])).payload(payload).build();
                        sd.registerService(si);
                        instances.put(base + "/" + a[2] + "/" + id, si);
                        result = id;
                        break;
                    }
                    case "unregister": {
                        ServiceInstance<ZookeeperInstance> si = instances.remove(a[1] + "/" + a[2] + "/" + a[3]);
                        discoveries.get(a[1]).unregisterService(si);
                        break;
                    }
                    case "delete":
                        client.delete().forPath(a[1]);
                        break;
                    default:
                        throw new IllegalArgumentException("unknown command " + a[0]);
                }
                System.out.println("ok " + result);
            } catch (Exception e) {
                System.out.println("error " + e.toString().replace('\n', ' '));
            }
            System.out.flush();
        }
        for (ServiceDiscovery<ZookeeperInstance> sd : discoveries.values()) {
            sd.close();
        }
        client.close();
    }
}
