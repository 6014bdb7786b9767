package lab;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import org.apache.dubbo.common.Version;
import org.apache.dubbo.config.ApplicationConfig;
import org.apache.dubbo.config.ProtocolConfig;
import org.apache.dubbo.config.ReferenceConfig;
import org.apache.dubbo.config.RegistryConfig;
import org.apache.dubbo.config.ServiceConfig;
import org.apache.dubbo.config.bootstrap.DubboBootstrap;
import org.apache.dubbo.rpc.service.GenericException;
import org.apache.dubbo.rpc.service.GenericService;

/**
 * The lab's Dubbo process, compiled unchanged against each Dubbo version (the API used here is
 * common to 2.7 and 3.x).
 *
 * <pre>
 * provider NAME PORT   exports the generic service lab.identity.NAME (application lab-NAME),
 *                      whose method who() answers "NAME@ADDRESS dubbo VERSION"; prints READY.
 * consumer WAIT_MS NAME...  calls who() on lab.identity.NAME for every NAME, each until it answers
 *                      or WAIT_MS pass, and prints one line per service:
 *                      CALL NAME OK ANSWER MILLIS | CALL NAME FAIL ERROR MILLIS
 * </pre>
 *
 * Everything else is Dubbo's own configuration: the registry from -Ddubbo.registry.address, the
 * register mode and discovery migration (3.x) from -Ddubbo.application.register-mode and
 * -Ddubbo.application.service-discovery.migration, and the address registered from
 * DUBBO_IP_TO_REGISTRY / DUBBO_PORT_TO_REGISTRY, which Dubbo reads itself.
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws Exception {
    if (args.length >= 3 && args[0].equals("provider")) {
      provider(args[1], Integer.parseInt(args[2]));
    } else if (args.length >= 3 && args[0].equals("consumer")) {
      List<String> names = new ArrayList<>();
      for (int i = 2; i < args.length; i++) {
        names.add(args[i]);
      }
      consumer(Long.parseLong(args[1]), names);
    } else {
      System.err.println("usage: provider NAME PORT | consumer WAIT_MS NAME...");
      System.exit(2);
    }
  }

  static String service(String name) {
    return "lab.identity." + name;
  }

  static RegistryConfig registry() {
    return new RegistryConfig(System.getProperty("dubbo.registry.address", "zookeeper://10.132.2.10:2181"));
  }

  static void provider(String name, int port) throws Exception {
    // Filled in once exported: the address Dubbo chose to register (DUBBO_IP_TO_REGISTRY and
    // DUBBO_PORT_TO_REGISTRY, else the NIC address it found) is the provider's identity.
    final String[] identity = {name};
    ServiceConfig<GenericService> svc = new ServiceConfig<>();
    svc.setInterface(service(name));
    svc.setRef(new GenericService() {
      @Override
      public Object $invoke(String method, String[] types, Object[] values) throws GenericException {
        return identity[0];
      }
    });
    ProtocolConfig protocol = new ProtocolConfig("dubbo", port);
    DubboBootstrap.getInstance()
        .application(new ApplicationConfig("lab-" + name))
        .registry(registry())
        .protocol(protocol)
        .service(svc)
        .start();
    identity[0] = name + "@" + svc.getExportedUrls().get(0).getAddress() + " dubbo " + Version.getVersion();
    System.out.println("READY " + identity[0]);
    System.out.flush();
    new CountDownLatch(1).await();
  }

  static void consumer(long waitMillis, List<String> names) throws Exception {
    List<ReferenceConfig<GenericService>> refs = new ArrayList<>();
    DubboBootstrap boot = DubboBootstrap.getInstance()
        .application(new ApplicationConfig("lab-consumer"))
        .registry(registry());
    for (String name : names) {
      ReferenceConfig<GenericService> ref = new ReferenceConfig<>();
      ref.setInterface(service(name));
      ref.setGeneric("true");
      ref.setCheck(false);
      ref.setTimeout(3000);
      ref.setRetries(0);
      // Application-level discovery (3.x) finds the provider's instances by its application name.
      ref.setProvidedBy("lab-" + name);
      boot.reference(ref);
      refs.add(ref);
    }
    boot.start();
    List<Thread> threads = new ArrayList<>();
    String[] lines = new String[names.size()];
    for (int i = 0; i < names.size(); i++) {
      final int n = i;
      Thread t = new Thread(() -> lines[n] = call(names.get(n), refs.get(n), waitMillis));
      t.start();
      threads.add(t);
    }
    for (Thread t : threads) {
      t.join();
    }
    for (String line : lines) {
      System.out.println(line);
    }
    System.out.flush();
    // LAB_HOLD keeps the consumer (and its registrations) until stdin closes, for captures.
    if (System.getenv("LAB_HOLD") != null) {
      while (System.in.read() != -1) {
        // the caller closes stdin to release it
      }
    }
    // Dubbo's shutdown hook can take seconds; the caller only needs the lines.
    Runtime.getRuntime().halt(0);
  }

  static String call(String name, ReferenceConfig<GenericService> ref, long waitMillis) {
    long start = System.nanoTime();
    long deadline = start + waitMillis * 1_000_000L;
    String err = "";
    while (true) {
      long t0 = System.nanoTime();
      try {
        Object answer = ref.get().$invoke("who", new String[0], new Object[0]);
        return "CALL " + name + " OK " + String.valueOf(answer).replace(' ', '_') + " " + (System.nanoTime() - t0) / 1_000_000;
      } catch (Throwable e) {
        err = e.getClass().getSimpleName() + ":" + String.valueOf(e.getMessage()).replaceAll("\\s+", "_");
        if (err.length() > 300) {
          err = err.substring(0, 300);
        }
      }
      if (System.nanoTime() > deadline) {
        return "CALL " + name + " FAIL " + err + " " + (System.nanoTime() - start) / 1_000_000;
      }
      try {
        Thread.sleep(300);
      } catch (InterruptedException e) {
        return "CALL " + name + " FAIL interrupted " + (System.nanoTime() - start) / 1_000_000;
      }
    }
  }
}
